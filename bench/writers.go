package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
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
		client := fromAddress(fmt.Sprintf("127.0.0.%d", 2+i/signupsPerAddress))
		creds := fmt.Sprintf(`{"email":"writer-%d@bench.example","password":"bench-writer-%d"}`, i, i)
		if status, body, err := post(client, usersURL+"/signup", creds); err != nil || status != http.StatusCreated {
			return nil, fmt.Errorf("signup of writer %d: %d %v %s", i, status, err, body)
		}
		status, body, err := post(client, usersURL+"/login", creds)
		var answer struct{ Token string }
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.Token == "" {
			return nil, fmt.Errorf("login of writer %d: %d %v %s", i, status, err, body)
		}
		tokens = append(tokens, answer.Token)
	}
	return tokens, nil
}

// fromAddress is a client whose connections leave from the loopback address ip.
func fromAddress(ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
}

func post(client *http.Client, url, body string) (int, []byte, error) {
	resp, err := client.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}
