// Package contract holds the tests every user store passes, through the public HTTP API: the
// file store (users.jsonl) and PostgreSQL answer the same requests the same way. Its tests
// are its only content.
package contract
