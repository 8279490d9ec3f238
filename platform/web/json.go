package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// MaxBodyBytes caps every request body. Every body a client needs to send fits well (a task
// at its size limits, even with every character written as a \u escape, takes under 64 KiB),
// and a service holds at most MAX_CONNECTIONS of them in memory at once: 16 MiB at 256.
const MaxBodyBytes = 64 << 10

// Respond writes v as JSON (see Marshal) with status. The body is encoded before any header
// is written, so an encoding failure is still a clean 500.
func Respond(w http.ResponseWriter, status int, v any) {
	body, err := Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"message":"Internal server error."}`)
	}
	RespondEncoded(w, status, body)
}

// Marshal encodes v as the original Express services' res.json did (JSON.stringify): no
// newline at the end, and <, >, &, U+2028 and U+2029 as themselves, where json.Marshal
// would write \u003c, \u2028…, so that answers are byte for byte the original's.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeLineSeparators(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// unescapeLineSeparators turns the escapes \u2028 and \u2029 that encoding/json always writes
// back into the characters, leaving escaped backslashes (\\u2028 is the text "\u2028") alone.
func unescapeLineSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && (string(b[i+2:i+6]) == "2028" || string(b[i+2:i+6]) == "2029") {
			out = utf8.AppendRune(out, 0x2028+rune(b[i+5]-'8'))
			i += 5
			continue
		}
		out = append(out, b[i], b[i+1]) // any other escape, \\ included, as it is
		i++
	}
	return out
}

// RespondEncoded writes a body of JSON already encoded, in parts (so that a large shared
// part is not copied), with status.
func RespondEncoded(w http.ResponseWriter, status int, parts ...[]byte) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(status)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}

// Decode reads the request body as one JSON object into a T. An empty body decodes as {}
// (as the original services did), so missing fields are left to the caller's validation.
// Failures are *Error: 413 for a body over MaxBodyBytes, 400 for anything that is not
// a single well-formed JSON object of the right field types.
func Decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	body, err := ReadBody(w, r)
	if err != nil {
		var v T
		return v, err
	}
	return DecodeBytes[T](body)
}

// ReadBody reads the request body whole, up to MaxBodyBytes (413 past it).
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	reader := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	var body []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= MaxBodyBytes {
		// Its announced length, in one read, with no buffer grown on the way.
		body = make([]byte, n)
		_, err = io.ReadFull(reader, body)
	} else {
		body, err = io.ReadAll(reader)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, NewError(http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large: the limit is %d KiB.", MaxBodyBytes>>10))
		}
		return nil, NewError(http.StatusBadRequest, "Could not read the request body.")
	}
	return body, nil
}

// DecodeBytes is Decode of a body already read.
func DecodeBytes[T any](body []byte) (T, error) {
	var v T
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return v, nil
	}
	if !utf8.Valid(body) {
		return v, NewError(http.StatusBadRequest, "Request body is not valid UTF-8.")
	}
	if body[0] != '{' {
		return v, NewError(http.StatusBadRequest, "Request body must be a JSON object.")
	}
	// The usual body is one well-formed object: json.Unmarshal takes it with no Decoder and
	// its buffer (a fifth of what auth allocated per call). Unmarshal accepts exactly what the
	// Decoder below accepts (one value, then only spaces); when it refuses, the Decoder runs
	// to say precisely why.
	if err := json.Unmarshal(body, &v); err == nil {
		return v, nil
	}
	v = *new(T)
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return v, NewError(http.StatusBadRequest, "Request body must hold exactly one JSON object.")
	}
	return v, nil
}

func decodeError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return NewError(http.StatusBadRequest,
			fmt.Sprintf("Field %q must be a %s, not a %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value))
	}
	return NewError(http.StatusBadRequest, "Request body is not valid JSON.")
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	default:
		return "number"
	}
}
