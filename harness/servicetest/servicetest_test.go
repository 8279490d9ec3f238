package servicetest

import (
	"os"
	"testing"
	"time"
)

// settings reads PATH and HOME, which the test process has set, to show that Defaults does
// not read the process's environment.
type settings struct {
	Path    string        `envconfig:"PATH" default:"no path"`
	Home    string        `envconfig:"HOME"`
	Timeout time.Duration `envconfig:"SERVICETEST_TIMEOUT" default:"1m"`
	Inner
}

type Inner struct {
	Count int `envconfig:"SERVICETEST_COUNT" default:"3"`
}

func TestDefaultsAreTheTagsWhateverTheEnvironmentSets(t *testing.T) {
	t.Parallel()
	got := Defaults[settings](t) // first: the child runs the test up to here
	if os.Getenv("PATH") == "" {
		t.Fatal("PATH is not set in the test's environment: the test would prove nothing")
	}
	if want := (settings{Path: "no path", Timeout: time.Minute, Inner: Inner{Count: 3}}); got != want {
		t.Errorf("Defaults = %+v, want %+v", got, want)
	}
	if again := Defaults[settings](t); again != got {
		t.Errorf("a second call gave %+v, the first %+v", again, got)
	}
}
