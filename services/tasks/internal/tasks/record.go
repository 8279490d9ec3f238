package tasks

import (
	"bytes"
	"encoding/json"
)

// Delimiter ends every record.
var Delimiter = []byte("TASK_SPLIT")

// escapedDelimiter is Delimiter with its first letter as a JSON \u escape: the same string
// once parsed, but no longer the delimiter's bytes.
var escapedDelimiter = []byte(`\u0054ASK_SPLIT`)

// Task is one task as clients send and see it.
type Task struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// record is a task as stored: with its owner's user id, which the original's reader keeps
// like any other field. Records of the original have no owner.
type record struct {
	Title string `json:"title"`
	Text  string `json:"text"`
	Owner string `json:"owner,omitempty"`
}

// EncodeRecord returns t, owned by owner ("" for none), as one record: compact JSON in which
// the bytes TASK_SPLIT never appear, even when the title or text contains them. JSON can only
// hold those letters inside a string, where an escaped first letter keeps the value and hides
// the delimiter.
func EncodeRecord(t Task, owner string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable, as the original wrote them
	if err := enc.Encode(record{Title: t.Title, Text: t.Text, Owner: owner}); err != nil {
		return nil, err
	}
	encoded := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// Occurrences can overlap ("TASK_SPLITASK_SPLIT": SPLIT ends with the T that starts the
	// next one), and one pass skips the second, so repeat until none is left. Each pass
	// removes at least one and creates none: the escape holds no T.
	for bytes.Contains(encoded, Delimiter) {
		encoded = bytes.ReplaceAll(encoded, Delimiter, escapedDelimiter)
	}
	return encoded, nil
}

// DecodeRecord reads one record: the task and its owner ("" for none). It is lenient with
// what the original could have written: a missing title or text is empty, and a non-string
// value is kept as its JSON text. An owner that is not a string is kept as its JSON text too,
// so that such a task is nobody's to see rather than everybody's.
func DecodeRecord(encoded []byte) (t Task, owner string, err error) {
	var fields struct {
		Title json.RawMessage `json:"title"`
		Text  json.RawMessage `json:"text"`
		Owner json.RawMessage `json:"owner"`
	}
	if err := json.Unmarshal(encoded, &fields); err != nil {
		return Task{}, "", err
	}
	return Task{Title: stringValue(fields.Title), Text: stringValue(fields.Text)}, stringValue(fields.Owner), nil
}

func stringValue(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
