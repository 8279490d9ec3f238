package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/harness/servicetest"
)

// defaults are what auth runs with when nothing is set, read once before the tests run.
var defaults config

func TestMain(m *testing.M) { servicetest.Main(m, &defaults, (*testing.M).Run) }

// testConfig is what auth runs with when nothing is set (defaults), on any free
// ports, with no delay at stop, with a signing key, the API key and the cheapest bcrypt
// cost.
func testConfig(t *testing.T) *config {
	cfg := defaults
	cfg.Port, cfg.MetricsPort, cfg.ShutdownDelay = 0, 0, 0
	cfg.JWTSecret, cfg.APIKey, cfg.BcryptCost = "a-test-secret-that-is-long-enough-123", apiKey, 4
	return &cfg
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, "auth", run, testConfig(t))
	client := authapi.NewClient(authapi.Config{URL: svc.URL, APIKey: apiKey, Timeout: 2 * time.Second})
	hash, err := client.HashPassword(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.IssueToken(context.Background(), "pw", hash, "u"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if !strings.Contains(svc.Logs(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in logs:\n%s", svc.Logs())
	}
	for _, secret := range []string{"a-test-secret", apiKey} {
		if strings.Contains(svc.Logs(), secret) {
			t.Errorf("a secret reached the logs: %s", secret)
		}
	}
}

const apiKey = "the-service-credential-for-tests-0123456789"

// TestAuthRefusesCallersWithoutTheAPIKey: nothing is hashed or minted for a caller without
// the key, or with a wrong one; the answer says it is the caller that was refused.
func TestAuthRefusesCallersWithoutTheAPIKey(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, "auth", run, testConfig(t))
	ctx := context.Background()
	for name, key := range map[string]string{"no key": "", "wrong key": apiKey + "x", "prefix of the key": apiKey[:20]} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			client := authapi.NewClient(authapi.Config{URL: svc.URL, APIKey: key, Timeout: 2 * time.Second})
			if _, err := client.HashPassword(ctx, "pw"); !errors.Is(err, authapi.ErrKeyRefused) {
				t.Fatalf("HashPassword: %v, want ErrKeyRefused", err)
			}
			// A hash the caller made itself, for a uid of its choosing: nothing minted.
			forged, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
			if tok, err := client.IssueToken(ctx, "pw", string(forged), "admin"); !errors.Is(err, authapi.ErrKeyRefused) || tok != "" {
				t.Fatalf("IssueToken: %q, %v, want ErrKeyRefused", tok, err)
			}
			if err := client.Ping(ctx); !errors.Is(err, authapi.ErrKeyRefused) || client.Answered() {
				t.Fatalf("Ping: %v (answered %v), want ErrKeyRefused", err, client.Answered())
			}
		})
	}
	good := authapi.NewClient(authapi.Config{URL: svc.URL, APIKey: apiKey, Timeout: 2 * time.Second})
	if err := good.Ping(ctx); err != nil || !good.Answered() {
		t.Fatalf("Ping with the key: %v", err)
	}
}

func TestRunRefusesToStartWithoutAnAPIKeyUnlessInDevMode(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "too-short-a-key"} {
		cfg := testConfig(t)
		cfg.APIKey = key
		err := run(context.Background(), cfg, nil, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "AUTH_API_KEY") {
			t.Errorf("AUTH_API_KEY=%q: run = %v, want an error naming AUTH_API_KEY", key, err)
		}
	}
	cfg := testConfig(t)
	cfg.APIKey, cfg.DevMode = "", true
	svc := servicetest.Start(t, "auth", run, cfg)
	if !strings.Contains(svc.Logs(), "DEV_MODE") {
		t.Errorf("a run without a key does not warn:\n%s", svc.Logs())
	}
	client := authapi.NewClient(authapi.Config{URL: svc.URL, Timeout: 2 * time.Second})
	if _, err := client.HashPassword(context.Background(), "pw"); err != nil {
		t.Fatalf("DEV_MODE without a key: %v", err)
	}
}

func TestRunRefusesToStartWithoutAGoodSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"", "short"} {
		cfg := testConfig(t)
		cfg.JWTSecret = secret
		err := run(context.Background(), cfg, nil, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") || !strings.Contains(err.Error(), "openssl rand") {
			t.Errorf("JWT_SECRET=%q: run = %v, want an error naming JWT_SECRET and how to make one", secret, err)
		}
	}
}

// TestRunWithNothingSetSaysWhatToDo: bin/auth started by hand with no settings at all says
// what JWT_SECRET is, how to make one, and that make run sets one; not envconfig's
// "required key JWT_SECRET missing value".
func TestRunWithNothingSetSaysWhatToDo(t *testing.T) {
	t.Parallel()
	nothingSet := defaults
	err := run(context.Background(), &nothingSet, nil, &strings.Builder{})
	if err == nil {
		t.Fatal("auth started with nothing set")
	}
	for _, want := range []string{"JWT_SECRET is not set", "at least 32 bytes", "openssl rand -base64 48", "make run"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}
