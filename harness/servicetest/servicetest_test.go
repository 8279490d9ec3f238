package servicetest

import (
	"os"
	"testing"
	"time"
)

type settings struct {
	Port    string        `envconfig:"SERVICETEST_PORT" default:"8000"`
	Timeout time.Duration `envconfig:"SERVICETEST_TIMEOUT" default:"1m"`
	Inner
}

type Inner struct {
	Count int `envconfig:"SERVICETEST_COUNT" default:"3"`
}

// A setting in the process environment does not reach the defaults, and is there again after.
func TestDefaultsAreTheTagsWhateverTheEnvironmentSets(t *testing.T) {
	t.Setenv("SERVICETEST_PORT", "1")
	var got settings
	if err := Defaults(&got); err != nil {
		t.Fatal(err)
	}
	if want := (settings{Port: "8000", Timeout: time.Minute, Inner: Inner{Count: 3}}); got != want {
		t.Errorf("Defaults = %+v, want %+v", got, want)
	}
	if v := os.Getenv("SERVICETEST_PORT"); v != "1" {
		t.Errorf("after Defaults, SERVICETEST_PORT = %q, want 1 as before", v)
	}
}
