package authapi

import (
	"encoding/json"
	"testing"
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
