#!/bin/sh
logger -t keepalived-notify "$(hostname) is MASTER"
