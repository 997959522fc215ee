#!/bin/sh
# An init.d script for a Toto server: copy it to /etc/init.d/ under your service's name and
# replace TOTO_PROCESS with the command that starts the server, e.g.
#   /usr/bin/python /srv/myproject/totoserver.py
# init runs it from /: give the server absolute paths for the files it uses (pidfile,
# db_host of the json database, log files).

case "$1" in
start)
    TOTO_PROCESS --start
    ;;
stop)
    TOTO_PROCESS --stop
    ;;
restart)
    TOTO_PROCESS --restart
    ;;
*)
    echo "Usage: $0 {start|stop|restart}"
    echo
    echo "Configure the Toto process with absolute paths for every file it uses (pidfile,"
    echo "conf file) before using this script."
    exit 1
    ;;
esac
