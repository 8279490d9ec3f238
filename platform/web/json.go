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

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 1 << 20

// Respond writes v as JSON with status. The body is encoded before any header is
// written, so an encoding failure is still a clean 500.
func Respond(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"message":"Internal server error."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// RespondEncoded writes a body of JSON already encoded, in parts (so that a large shared
// part is not copied), with status. The body should end in a newline, as Respond's do.
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
	var v T
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return v, NewError(http.StatusRequestEntityTooLarge, "Request body too large: the limit is 1 MiB.")
		}
		return v, NewError(http.StatusBadRequest, "Could not read the request body.")
	}
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
