-- Accounts: one row per user, found by their normalised email.

CREATE TABLE users (
    id text PRIMARY KEY,
    email text NOT NULL UNIQUE,     -- normalised: lower case, no surrounding spaces
    password_hash text NOT NULL,    -- bcrypt, made by auth
    created_at timestamptz NOT NULL
);
