"""`python -m fabfile.tasks`: lbtk's own command (fabfile/tasks/program.py), what `lbtk` runs."""
if __name__ == "__main__":
    from fabfile.tasks.program import main
    main()
