-- The schema and seed of the users table: the one place they live. The mysql
-- image runs this file at first start (docker-entrypoint-initdb.d, against
-- MYSQL_DATABASE); the tests and the native stack runner apply the same file.
CREATE TABLE IF NOT EXISTS users (
  id              INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  first_name      VARCHAR(30)  NOT NULL,
  last_name       VARCHAR(30)  NOT NULL,
  -- The Idempotency-Key of the POST that created the row: a retried create
  -- finds its row instead of making a second one. NULL for keyless creates.
  idempotency_key VARCHAR(64)  NULL,
  UNIQUE KEY users_idempotency_key (idempotency_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The talk's one user, added once.
INSERT INTO users (first_name, last_name)
SELECT 'joe', 'cool' FROM DUAL
WHERE NOT EXISTS (SELECT 1 FROM users);

-- The transactional outbox (internal/outbox, its Schema): service2 writes a task here
-- in the transaction that creates its user; its relay publishes the rows
-- not yet sent to NATS JetStream (Nats-Msg-Id outbox-<id>), marks them
-- sent, and deletes them a day later.
CREATE TABLE IF NOT EXISTS outbox (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  topic      VARCHAR(64)    NOT NULL,
  payload    VARBINARY(4096) NOT NULL,
  headers    VARBINARY(4096) NOT NULL,
  created_at DATETIME(6)    NOT NULL,
  sent_at    DATETIME(6)    NULL,
  KEY outbox_pending (sent_at, id)
) ENGINE = InnoDB;

-- The worker's effect: one welcome message per task, keyed by the task's
-- outbox ID, so a task delivered twice is done once.
CREATE TABLE IF NOT EXISTS welcome_messages (
  task_id    BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  user_id    INT UNSIGNED    NOT NULL,
  sent_at    DATETIME(6)     NOT NULL
) ENGINE = InnoDB;
