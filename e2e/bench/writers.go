package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// signupsPerAddress stays within users' default SIGNUPS_PER_CLIENT (20 a minute): the limits
// stay on while the bench measures, so its writers come from several loopback addresses.
const signupsPerAddress = 20

// writers signs up n users at usersURL, each from one of several loopback addresses
// (127.0.0.2, .3…), logs each in, and returns their tokens: POST /tasks is loaded by many
// users, as each has a quota of tasks (TASKS_PER_USER).
func writers(usersURL string, n int) ([]string, error) {
	tokens := make([]string, 0, n)
	for i := range n {
		client := harness.ClientFrom(fmt.Sprintf("127.0.0.%d", 2+i/signupsPerAddress), false, 30*time.Second)
		creds := map[string]string{"email": fmt.Sprintf("writer-%d@bench.example", i), "password": fmt.Sprintf("bench-writer-%d", i)}
		if a, err := harness.DoWith(client, http.MethodPost, usersURL+"/signup", "", creds); err != nil || a.Status != http.StatusCreated {
			return nil, fmt.Errorf("signup of writer %d: %d %v %s", i, a.Status, err, a.Raw)
		}
		a, err := harness.DoWith(client, http.MethodPost, usersURL+"/login", "", creds)
		token, _ := a.Body["token"].(string)
		if err != nil || a.Status != http.StatusOK || token == "" {
			return nil, fmt.Errorf("login of writer %d: %d %v %s", i, a.Status, err, a.Raw)
		}
		tokens = append(tokens, token)
	}
	return tokens, nil
}
