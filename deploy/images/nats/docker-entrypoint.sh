#!/bin/sh
# The NATS stand-in's entrypoint (cmd/standins), doing what the nats:alpine
# image's does: a first argument that is a flag (or none) runs nats-server
# with the arguments; anything else is run as given.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- nats-server "$@"
fi
exec "$@"
