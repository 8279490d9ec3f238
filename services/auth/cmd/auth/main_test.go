package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/servicetest"
)

func TestRunServesUntilCancelled(t *testing.T) {
	svc := servicetest.Start(t, "auth", run, map[string]string{
		"JWT_SECRET":  "a-test-secret-that-is-long-enough-123",
		"BCRYPT_COST": "4",
	})
	client := authapi.NewClient(svc.URL, 2*time.Second, nil)
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
	if strings.Contains(svc.Logs(), "a-test-secret") {
		t.Errorf("the JWT secret reached the logs")
	}
}

func TestRunRefusesToStartWithoutAGoodSecret(t *testing.T) {
	for _, secret := range []string{"", "short"} {
		t.Setenv("JWT_SECRET", secret)
		err := run(context.Background(), []string{"auth"}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
			t.Errorf("JWT_SECRET=%q: run = %v, want an error naming JWT_SECRET", secret, err)
		}
	}
}
