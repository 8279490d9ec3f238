// Package authapi is the internal API of the auth service: its routes and bodies, shared by
// the auth server and by the client that users and tasks call it with. Passwords and tokens
// travel only in POST bodies, never in a URL, so no proxy or access log ever records them.
package authapi

// Routes. The names follow the original service's duties: hash a password, issue a token for
// a password against its hash, verify a token.
const (
	PathHashPassword = "/hashed-password"
	PathIssueToken   = "/token"
	PathVerifyToken  = "/verify-token"
)

// HashRequest asks for a bcrypt hash of Password.
type HashRequest struct {
	Password string `json:"password"`
}

// HashResponse carries the hash.
type HashResponse struct {
	HashedPassword string `json:"hashedPassword"`
}

// TokenRequest asks for a token for user UID if Password matches HashedPassword.
// An empty or malformed HashedPassword still costs one bcrypt comparison, so that an unknown
// user takes as long to refuse as a wrong password.
type TokenRequest struct {
	Password       string `json:"password"`
	HashedPassword string `json:"hashedPassword"`
	UID            string `json:"uid"`
}

// TokenResponse carries the signed token.
type TokenResponse struct {
	Token string `json:"token"`
}

// VerifyRequest asks whether Token is valid.
type VerifyRequest struct {
	Token string `json:"token"`
}

// VerifyResponse names the user the token was issued to.
type VerifyResponse struct {
	Message string `json:"message"`
	UID     string `json:"uid"`
}

// MaxPasswordBytes is bcrypt's limit: it ignores (x/crypto refuses) anything longer.
const MaxPasswordBytes = 72

// MaxTokenBytes bounds a token: ours are about 300 bytes.
const MaxTokenBytes = 4096

// TokenShaped reports whether token could be one of auth's: up to MaxTokenBytes of the
// characters of a JWT (base64url parts and the dots between them). Anything else is refused
// without asking auth.
func TokenShaped[T string | []byte](token T) bool {
	if len(token) == 0 || len(token) > MaxTokenBytes {
		return false
	}
	for i := range len(token) {
		switch c := token[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '=':
		default:
			return false
		}
	}
	return true
}

// ValidTokenMessage is auth's message with the uid of a valid token (API.md).
const ValidTokenMessage = "Valid token."
