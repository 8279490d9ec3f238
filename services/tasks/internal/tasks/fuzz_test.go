package tasks

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzRecordRoundTrip: any title and text (as valid UTF-8, which is all a request can carry)
// encode to one record without the delimiter in it, and decode back identical.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("Buy milk", "2 litres", "")
	f.Add("TASK_SPLIT", "TASK_SPLITTASK_SPLIT", "TASK_SPLIT")
	f.Add(`\TASK_SPLIT`, `"\u0054ASK_SPLIT"`, "uid-1")
	f.Add("<b>&amp;</b>", "\x00\n\t\u2028", "OWNER2")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, title, text, owner string) {
		if !utf8.ValidString(title) || !utf8.ValidString(text) || !utf8.ValidString(owner) {
			return // the HTTP layer refuses invalid UTF-8 before it gets here
		}
		task := Task{Title: title, Text: text}
		record, err := EncodeRecord(task, owner)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(record, Delimiter) {
			t.Fatalf("record %q contains the delimiter", record)
		}
		got, gotOwner, err := DecodeRecord(record)
		if err != nil || got != task || gotOwner != owner {
			t.Fatalf("DecodeRecord(%q) = %q, %q, %v; want %q, %q", record, got, gotOwner, err, task, owner)
		}
	})
}
