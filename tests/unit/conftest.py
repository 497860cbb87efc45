"""Secret files are refused when group or others may read them (fabfile/model/secrets.py), and git
checks every file out 0644: the committed ones (the seed's public demo secret, the broken
inventories' fixtures) are made 0600 before any test reads them, as a user's `chmod 600` would."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_SECRETS = [ROOT / "inventories/secrets/example.auth_pass",
                     *(ROOT / "tests/inventories/broken/secrets").glob("*.auth_pass")]

OPEN_SECRET = ROOT / "tests/inventories/broken/secrets/open_to_others.secret"   # the refusal's own case

for p in COMMITTED_SECRETS:      # at import: before any test module is collected
    if p.is_file():
        p.chmod(0o600)
OPEN_SECRET.chmod(0o644)         # whatever the umask made of it
