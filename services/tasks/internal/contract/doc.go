// Package contract holds the tests every task store passes, through the public HTTP API: the
// file store (tasks.txt) and PostgreSQL answer the same requests with the same bytes. Its
// tests are its only content.
package contract
