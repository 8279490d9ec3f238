package authapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHandWrittenJSONIsJSON: the request written by hand decodes to the token, and tokens it
// cannot write (characters json.Marshal escapes) are left to json.Marshal.
func TestHandWrittenJSONIsJSON(t *testing.T) {
	for token, byHand := range map[string]bool{
		"eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOiJ1In0.sig_-": true,
		"":            true,
		`a"b`:         false,
		`a\b`:         false,
		"<script>":    false,
		"caf\u00e9":   false,
		"line\nbreak": false,
	} {
		payload, ok := encodeVerify(token)
		if ok != byHand {
			t.Errorf("encodeVerify(%q): by hand %v, want %v", token, ok, byHand)
			continue
		}
		if !ok {
			continue
		}
		var back VerifyRequest
		if err := json.Unmarshal(payload, &back); err != nil || back.Token != token {
			t.Errorf("encodeVerify(%q) = %s: decodes to %q, %v", token, payload, back.Token, err)
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
		`{"uid":"x","message":"Valid token."}`:                          false,
		`{"message":"Valid token.","uid":"x"} `:                         false,
		`"}`:                                                            false,
	} {
		var got VerifyResponse
		if ok := decodeVerified([]byte(body), &got); ok != byHand {
			t.Errorf("decodeVerified(%s): %v, want %v", body, ok, byHand)
			continue
		} else if !ok {
			continue
		}
		var want VerifyResponse
		if err := json.Unmarshal([]byte(body), &want); err != nil || got != want {
			t.Errorf("decodeVerified(%s) = %+v, json.Unmarshal %+v %v", body, got, want, err)
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
