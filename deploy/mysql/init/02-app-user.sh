# Creates the application's database user with the least privileges it needs:
# SELECT and INSERT on the users table, nothing else (no DDL, no DELETE, no
# other schema). service2 connects as this user, never as root.
#
# The mysql image sources this file at first start (it is not executable on
# purpose: sourced, it can use the entrypoint's docker_process_sql). The native
# stack runner runs it with bash and MYSQL_CLIENT set to a client command line.
# Inputs: MYSQL_DATABASE, MYSQL_APP_USER, MYSQL_APP_PASSWORD.

app_sql() {
	if declare -F docker_process_sql >/dev/null; then
		docker_process_sql --database=mysql
	else
		${MYSQL_CLIENT:?MYSQL_CLIENT must name a client command} mysql
	fi
}

app_sql <<SQL
CREATE USER IF NOT EXISTS '${MYSQL_APP_USER:?}'@'%' IDENTIFIED BY '${MYSQL_APP_PASSWORD:?}';
GRANT SELECT, INSERT ON \`${MYSQL_DATABASE:?}\`.users TO '${MYSQL_APP_USER}'@'%';
SQL
