-- Demo customers for the voicebot bank line.  The actions server builds the
-- runtime database (bank/demo_bank.sqlite3, or $VOICEBOT_BANK_DB) from this
-- file the first time it needs it.  Everything here is fictitious.
--
-- PINs are never stored: pin_hash = hex(sha256(unhex(pin_salt) || pin)), one
-- random 16-byte salt per customer.  Make a new pair with:
--     python rasa_project/actions/bank.py hash-pin 1234
-- Demo PINs (for testing only): +15550100 -> 4321, +15550101 -> 1357,
-- +15550102 -> 2468, +15550103 -> 8080.
-- Transaction dates are relative to the day the database is created, so the
-- demo always has "recent" transactions.

PRAGMA foreign_keys = ON;

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    full_name   TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    phone       TEXT NOT NULL UNIQUE,          -- E.164 caller ID
    pin_salt    TEXT NOT NULL,                 -- hex
    pin_hash    TEXT NOT NULL                  -- hex sha256(salt || pin)
);

CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL REFERENCES customers(id),
    kind           TEXT NOT NULL,              -- 'checking' or 'savings'
    balance_cents  INTEGER NOT NULL
);

CREATE TABLE cards (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    last4        TEXT NOT NULL,
    kind         TEXT NOT NULL,                -- 'debit' or 'credit'
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    blocked_at   TEXT,                         -- ISO timestamp (UTC)
    block_reason TEXT
);

CREATE TABLE transactions (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    posted_on     TEXT NOT NULL,               -- ISO date
    description   TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL             -- negative = money out
);

-- Text messages the bot "sends".  Nothing is ever really sent: a real
-- deployment would have a gateway drain this table.
CREATE TABLE sms_outbox (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    phone        TEXT NOT NULL,
    kind         TEXT NOT NULL,                -- e.g. 'password_reset'
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

INSERT INTO customers (id, full_name, first_name, phone, pin_salt, pin_hash) VALUES
 (1, 'Alex Morgan', 'Alex', '+15550100', '11cbe7acce89756f0cfd78c881810193',
  'd34eaefa962b21bad6bdf7314bcc95861e6395806841a70eec3439fdf6c7d9fc'),
 (2, 'Priya Shah', 'Priya', '+15550101', 'b5598fe5160b60df6aba24c300eeb409',
  '09b2a45bb24c9c09fe661cfb34f8d785b3d04895d3c479c1a48da530f736c346'),
 (3, 'Sam O''Neill', 'Sam', '+15550102', 'bde056a55b07bbfdad6e226306a31731',
  'cce9782582d4149717924b7eeab52418299a04adbc7e5b5587747347cc41940d'),
 (4, 'Maria Garcia', 'Maria', '+15550103', 'cc63760d8d793fec389d63b4abfc5d02',
  'ad888512596ae3b7296f0df2e49d01e8b9c119f30d2fcf34f971f096dbab6e82');

INSERT INTO accounts (id, customer_id, kind, balance_cents) VALUES
 (1, 1, 'checking', 123456),
 (2, 2, 'checking', 1502000),
 (3, 2, 'savings', 4250001),
 (4, 3, 'checking', -4210),
 (5, 4, 'checking', 87);

INSERT INTO cards (id, customer_id, last4, kind, status, blocked_at, block_reason) VALUES
 (1, 1, '4417', 'debit', 'active', NULL, NULL),
 (2, 2, '9902', 'debit', 'active', NULL, NULL),
 (3, 2, '5120', 'credit', 'active', NULL, NULL),
 (4, 3, '3310', 'debit', 'blocked', '2025-01-15T10:00:00Z', 'lost');
-- Maria (customer 4) has no card.

INSERT INTO transactions (account_id, posted_on, description, amount_cents) VALUES
 (1, date('now', '-1 day'),  'Green Grocer',        -4217),
 (1, date('now', '-2 days'), 'Acme Payroll',       150000),
 (1, date('now', '-3 days'), 'City Power and Light', -8930),
 (1, date('now', '-6 days'), 'Corner Coffee',         -475),
 (1, date('now', '-9 days'), 'Rent',              -120000),
 (2, date('now', '-1 day'),  'Bookworm Books',       -2399),
 (2, date('now', '-4 days'), 'Transfer to savings', -50000),
 (3, date('now', '-4 days'), 'Transfer from checking', 50000),
 (4, date('now', '-2 days'), 'Overdraft fee',        -3500),
 (4, date('now', '-5 days'), 'Fuel Stop',            -6710),
 (5, date('now', '-7 days'), 'Interest',                12);
