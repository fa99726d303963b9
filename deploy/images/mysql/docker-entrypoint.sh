#!/bin/bash
# The MySQL stand-in's entrypoint (cmd/standins; not the official image's
# script): Debian's MariaDB, with the part of the official mysql image's
# init contract that deploy/mysql/init relies on. On a first start (an
# empty /var/lib/mysql), with MYSQL_ROOT_PASSWORD set:
#   - a temporary server on the socket only (no network, so a healthcheck
#     over 127.0.0.1 fails until the real server runs);
#   - root's password, for localhost and '%' (MYSQL_ROOT_HOST's default),
#     and no other root account (mariadb-install-db makes passwordless ones);
#   - MYSQL_DATABASE created, and MYSQL_USER / MYSQL_PASSWORD with ALL on it;
#   - each file of /docker-entrypoint-initdb.d in order: *.sql through the
#     client, *.sh run when executable and sourced otherwise, with the
#     function docker_process_sql (stdin to the client, into
#     MYSQL_DATABASE) defined;
#   - then the real server, as the mysql user.
# A first argument that is a flag, or mysqld, starts the server with those
# flags; anything else is run as given.
set -eo pipefail

note() { echo "$(date -u +%FT%TZ) [Note] [Entrypoint]: $*"; }
fail() { echo "$(date -u +%FT%TZ) [ERROR] [Entrypoint]: $*" >&2; exit 1; }

if [ "${1#-}" != "$1" ]; then set -- mysqld "$@"; fi
if [ "$1" != mysqld ]; then exec "$@"; fi
shift

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
install -d -o mysql -g mysql /run/mysqld "$DATADIR"

# shellcheck disable=SC2120 # the init scripts pass arguments (--database=mysql)
docker_process_sql() {
	MYSQL_PWD=$MYSQL_ROOT_PASSWORD mariadb --protocol=socket --socket="$SOCKET" -uroot ${MYSQL_DATABASE:+--database="$MYSQL_DATABASE"} "$@"
}

if [ ! -d "$DATADIR/mysql" ]; then
	[ -n "$MYSQL_ROOT_PASSWORD" ] || fail "Database is uninitialized and password option is not specified: set MYSQL_ROOT_PASSWORD"
	note "Initializing database files"
	mariadb-install-db --user=mysql --datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db >/dev/null
	note "Starting temporary server"
	mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket="$SOCKET" "$@" &
	pid=$!
	for _ in $(seq 30); do
		mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
		sleep 1
	done
	mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 || fail "Unable to start the temporary server"
	mariadb --protocol=socket --socket="$SOCKET" -uroot <<-SQL
		ALTER USER 'root'@'localhost' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD//\'/\'\'}';
		DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'${HOSTNAME}';
		CREATE USER 'root'@'%' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD//\'/\'\'}';
		GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
	SQL
	if [ -n "$MYSQL_DATABASE" ]; then
		note "Creating database ${MYSQL_DATABASE}"
		MYSQL_DATABASE='' docker_process_sql <<<"CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
	fi
	if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
		note "Creating user ${MYSQL_USER}"
		MYSQL_DATABASE='' docker_process_sql <<<"CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY '${MYSQL_PASSWORD//\'/\'\'}';${MYSQL_DATABASE:+ GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';}"
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh)
			if [ -x "$f" ]; then note "running $f"; "$f"; else note "sourcing $f"; # shellcheck disable=SC1090
				. "$f"; fi ;;
		*.sql) note "running $f"; docker_process_sql <"$f" ;;
		*) [ -e "$f" ] && note "ignoring $f" ;;
		esac
	done
	note "Stopping temporary server"
	MYSQL_PWD=$MYSQL_ROOT_PASSWORD mariadb-admin --socket="$SOCKET" -uroot shutdown
	wait "$pid" || true
	note "Temporary server stopped; init process done. Ready for start up."
fi

exec mariadbd --user=mysql --datadir="$DATADIR" --socket="$SOCKET" --bind-address=0.0.0.0 --port=3306 "$@"
