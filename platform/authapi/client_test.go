package authapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/platform/web"
)

// TestHandWrittenVerifyCallIsJSON: a call written by hand decodes with encoding/json to its
// token and is read back by hand the same; tokens not shaped as ours (empty, characters JSON
// escapes) are left to encoding/json on both sides.
func TestHandWrittenVerifyCallIsJSON(t *testing.T) {
	for token, byHand := range map[string]bool{
		"eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOiJ1In0.sig_-": true,
		"":            false,
		`a"b`:         false,
		`a\b`:         false,
		"<script>":    false,
		"caf\u00e9":   false,
		"line\nbreak": false,
	} {
		payload, ok := encodeVerifyRequest(token)
		if ok != byHand {
			t.Errorf("encodeVerifyRequest(%q): by hand %v, want %v", token, ok, byHand)
			continue
		}
		if !ok {
			payload, _ = json.Marshal(VerifyRequest{Token: token})
		}
		if parsed, ok := ParseVerifyRequest(payload); ok != byHand || (ok && parsed.Token != token) {
			t.Errorf("ParseVerifyRequest(%s) = %q, %v; want by hand %v", payload, parsed.Token, ok, byHand)
		}
		var back VerifyRequest
		if err := json.Unmarshal(payload, &back); err != nil || back.Token != token {
			t.Errorf("call for %q = %s: decodes to %q, %v", token, payload, back.Token, err)
		}
	}
}

// TestHandReadAnswerIsWhatJSONReads: the usual answer read by hand gives what json.Unmarshal
// gives; anything else is refused, for json.Unmarshal to read.
func TestHandReadAnswerIsWhatJSONReads(t *testing.T) {
	for body, byHand := range map[string]bool{
		`{"message":"Valid token.","uid":"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}`: true,
		`{"message":"Valid token.","uid":"a\"b"}`:                       false,
		`{"message":"Valid token.","uid":""}`:                           false,
		"{\"message\":\"Valid token.\",\"uid\":\"a\tb\"}":               false,
		`{"uid":"x","message":"Valid token."}`:                          false,
		`{"message":"Valid token.","uid":"x"} `:                         false,
		`"}`:                                                            false,
	} {
		var got VerifyResponse
		if ok := parseVerified([]byte(body), &got); ok != byHand {
			t.Errorf("parseVerified(%s): %v, want %v", body, ok, byHand)
			continue
		} else if !ok {
			continue
		}
		var want VerifyResponse
		if err := json.Unmarshal([]byte(body), &want); err != nil || got != want {
			t.Errorf("parseVerified(%s) = %+v, json.Unmarshal %+v %v", body, got, want, err)
		}
	}
}

// TestAHungAuthIsUnavailableAndADeadline: a call to an auth that does not answer within
// Timeout fails as ErrUnavailable (callers answer 503) and as context.DeadlineExceeded (so
// a caller can tell a slow auth from a refused connection), within about Timeout.
func TestAHungAuthIsUnavailableAndADeadline(t *testing.T) {
	hung := make(chan struct{})
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hung }))
	defer auth.Close()
	defer close(hung)
	client := NewClient(Config{URL: auth.URL, Timeout: 100 * time.Millisecond})
	began := time.Now()
	_, err := client.VerifyToken(context.Background(), "eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOiJ1In0.sig")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want both ErrUnavailable and context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("the call took %s with a 100ms timeout", took)
	}
}

// TestHandWrittenAnswerIsWhatMarshalWrites: auth's usual answer written by hand is the bytes
// web.Marshal writes; uids that need escaping are left to it.
func TestHandWrittenAnswerIsWhatMarshalWrites(t *testing.T) {
	for uid, byHand := range map[string]bool{
		"7QJXHG4ZP2N5KD3BWA6VYCTF8M": true,
		"u1":                         true,
		"":                           false,
		`a"b`:                        false,
		`a\b`:                        false,
		"caf\u00e9":                  false,
		"a\u2028b":                   false,
		"<script>&":                  true,
	} {
		body, ok := EncodeVerified(uid)
		if ok != byHand {
			t.Errorf("EncodeVerified(%q): by hand %v, want %v", uid, ok, byHand)
			continue
		}
		if !ok {
			continue
		}
		want, err := web.Marshal(VerifyResponse{Message: ValidTokenMessage, UID: uid})
		if err != nil || string(body) != string(want) {
			t.Errorf("EncodeVerified(%q) = %s, web.Marshal %s %v", uid, body, want, err)
		}
	}
}
