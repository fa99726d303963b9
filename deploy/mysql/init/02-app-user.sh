# Creates the application's database users with the least privileges each
# needs, nothing else (no DDL, no other table or schema), never root:
# service2's: SELECT and INSERT on users, and its outbox (SELECT, INSERT,
# UPDATE to mark a task sent, DELETE to tidy sent ones); the worker's: SELECT
# and INSERT on welcome_messages only.
#
# The mysql image sources this file at first start (it is not executable on
# purpose: sourced, it can use the entrypoint's docker_process_sql). The native
# stack runner runs it with bash and MYSQL_CLIENT set to a client command line.
# Inputs: MYSQL_DATABASE, MYSQL_APP_USER, MYSQL_APP_PASSWORD,
# MYSQL_WORKER_USER, MYSQL_WORKER_PASSWORD.

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
GRANT SELECT, INSERT, UPDATE, DELETE ON \`${MYSQL_DATABASE}\`.outbox TO '${MYSQL_APP_USER}'@'%';
CREATE USER IF NOT EXISTS '${MYSQL_WORKER_USER:?}'@'%' IDENTIFIED BY '${MYSQL_WORKER_PASSWORD:?}';
GRANT SELECT, INSERT ON \`${MYSQL_DATABASE}\`.welcome_messages TO '${MYSQL_WORKER_USER}'@'%';
SQL
