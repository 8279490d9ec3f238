package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/kub-demo/kub-demo/platform/web"
)

// requireAPIKey lets through only requests whose Authorization header is "Bearer <key>".
// Others get 401 with a WWW-Authenticate header, which tells a caller that it is the caller,
// not the password or token it sent, that was refused. An empty key lets everything through.
func requireAPIKey(key string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if key == "" {
			return next
		}
		// Digests of equal length, compared in constant time: neither the key's length nor
		// how much of it a guess got right shows in the time of the answer.
		want := sha256.Sum256([]byte(key))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			presented, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			got := sha256.Sum256([]byte(presented))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !bearer {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kub-demo-auth"`)
				web.Respond(w, http.StatusUnauthorized, web.MessageBody{
					Message: "This service is only for callers with the service credential (AUTH_API_KEY)."})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
