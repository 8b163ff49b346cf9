// Package accounts owns the people who use the web app: vendor and agency
// users, partners in their portal, their passwords (argon2id), their
// sessions, and the rate limit on logging in. It knows nothing of HTTP.
package accounts

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Kinds of user, and the portal each logs in to.
const (
	Vendor  = "vendor"  // runs a company's program
	Agency  = "agency"  // reads a hub workspace
	Partner = "partner" // a partnership, in the partner portal

	PortalApp     = "app"
	PortalPartner = "partner"
)

// Roles. A viewer reads; an admin also acts (approves, pays, connects);
// an owner also manages users.
const (
	Owner  = "owner"
	Admin  = "admin"
	Viewer = "viewer"
)

// Limits on logging in: failures counted over a window, per email and per
// client address, in the database so that every node counts the same.
const (
	FailureWindow      = 15 * time.Minute
	MaxEmailFailures   = 5
	MaxClientFailures  = 20
	SessionLifetime    = 7 * 24 * time.Hour
	MinPasswordLength  = 10
	maxPasswordLength  = 1024 // argon2 takes any length; a megabyte would be a cost, not a password
	argonTime          = 2
	argonMemoryKiB     = 19 * 1024 // OWASP's argon2id minimum
	argonThreads       = 1
	argonKeyLen        = 32
	argonSaltLen       = 16
	sessionTokenPrefix = "pds"
)

// ErrBadLogin is a wrong email or password; it does not say which.
var ErrBadLogin = errs.E(errs.Unauthorized, "the email or password is not right")

// User is a person who logs in.
type User struct {
	ID            int64
	Key           string
	Portal        string
	Kind          string
	Email         string
	Name          string
	Role          string
	CompanyID     int64 // vendors
	WorkspaceID   int64 // agencies
	PartnershipID int64 // partners (and their company in CompanyID)
	CreatedAt     int64
	LastLoginAt   *int64
}

// Can tells whether the user's role allows acting (not only reading).
func (u User) Can() bool { return u.Role == Owner || u.Role == Admin }

// Session is a logged-in user and the CSRF token of its forms.
type Session struct {
	User      User
	CSRF      string
	ExpiresAt int64
}

// Service stores users and sessions.
type Service struct {
	db    *store.DB
	clock clock.Clock
	// dummy is checked when no user has the email, so that an unknown
	// email costs what a wrong password does. Made on first use: hashing
	// takes tens of milliseconds that commands which never log in skip.
	dummy func() string
}

// New returns a Service.
func New(db *store.DB, c clock.Clock) *Service {
	return &Service{db: db, clock: c, dummy: sync.OnceValue(func() string {
		h, _ := hashPassword(secret.Random(24))
		return h
	})}
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// UserInput creates a user. Exactly the owner field of its kind is set:
// CompanyID for a vendor, WorkspaceID for an agency, PartnershipID (and
// its CompanyID) for a partner.
type UserInput struct {
	Kind          string
	Email         string
	Name          string
	Password      string
	Role          string
	CompanyID     int64
	WorkspaceID   int64
	PartnershipID int64
}

// normalEmail checks an address and lower-cases it.
func normalEmail(v string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(v))
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		return "", errs.E(errs.Invalid, "email: %q is not an email address", v)
	}
	return strings.ToLower(a.Address), nil
}

func checkPassword(p string) error {
	switch {
	case len([]rune(p)) < MinPasswordLength:
		return errs.E(errs.Invalid, "password: at least %d characters", MinPasswordLength)
	case len(p) > maxPasswordLength:
		return errs.E(errs.Invalid, "password: at most %d bytes", maxPasswordLength)
	}
	return nil
}

// CreateUser stores a new user with its password hashed.
func (s *Service) CreateUser(ctx context.Context, in UserInput) (User, error) {
	email, err := normalEmail(in.Email)
	if err != nil {
		return User{}, err
	}
	if err := checkPassword(in.Password); err != nil {
		return User{}, err
	}
	u := User{Key: secret.Key("user"), Kind: in.Kind, Email: email, Name: strings.TrimSpace(in.Name), Role: in.Role, CreatedAt: s.now()}
	switch in.Kind {
	case Vendor:
		u.Portal, u.CompanyID = PortalApp, in.CompanyID
		if in.CompanyID == 0 || in.WorkspaceID != 0 || in.PartnershipID != 0 {
			return User{}, errs.E(errs.Invalid, "a vendor user belongs to one company and nothing else")
		}
	case Agency:
		u.Portal, u.WorkspaceID = PortalApp, in.WorkspaceID
		if in.WorkspaceID == 0 || in.CompanyID != 0 || in.PartnershipID != 0 {
			return User{}, errs.E(errs.Invalid, "an agency user belongs to one workspace and nothing else")
		}
	case Partner:
		u.Portal, u.CompanyID, u.PartnershipID = PortalPartner, in.CompanyID, in.PartnershipID
		if in.PartnershipID == 0 || in.CompanyID == 0 || in.WorkspaceID != 0 {
			return User{}, errs.E(errs.Invalid, "a partner user belongs to one partnership and nothing else")
		}
		if u.Role == "" {
			u.Role = Viewer
		}
	default:
		return User{}, errs.E(errs.Invalid, "kind: %q is not vendor, agency or partner", in.Kind)
	}
	switch u.Role {
	case Owner, Admin, Viewer:
	default:
		return User{}, errs.E(errs.Invalid, "role: %q is not owner, admin or viewer", in.Role)
	}
	if u.Kind == Partner && u.Role != Viewer {
		return User{}, errs.E(errs.Invalid, "role: a partner user is a viewer of its own partnership")
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return User{}, err
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM web_users WHERE portal = ? AND email = ?", u.Portal, u.Email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errs.E(errs.Conflict, "a user with the email %s already exists", u.Email)
		}
		return tx.QueryRow(ctx, `INSERT INTO web_users (key, portal, kind, email, name, password_hash, role, company_id, workspace_id, partnership_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, u.Key, u.Portal, u.Kind, u.Email, u.Name, hash, u.Role,
			nullID(u.CompanyID), nullID(u.WorkspaceID), nullID(u.PartnershipID), u.CreatedAt).Scan(&u.ID)
	})
	if store.IsUniqueViolation(err) {
		return User{}, errs.E(errs.Conflict, "a user with the email %s already exists", u.Email)
	}
	if errs.CodeOf(err) != errs.Internal {
		return User{}, err
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

const userCols = `u.id, u.key, u.portal, u.kind, u.email, u.name, u.role, COALESCE(u.company_id, 0), COALESCE(u.workspace_id, 0),
	COALESCE(u.partnership_id, 0), u.created_at, u.last_login_at`

func scanUser(sc store.Scanner, extra ...any) (User, error) {
	var u User
	err := sc.Scan(append([]any{&u.ID, &u.Key, &u.Portal, &u.Kind, &u.Email, &u.Name, &u.Role, &u.CompanyID, &u.WorkspaceID,
		&u.PartnershipID, &u.CreatedAt, &u.LastLoginAt}, extra...)...)
	return u, err
}

// Login checks an email and password at a portal and opens a session. It
// returns the session's cookie token (shown once) and the session.
//
// A wrong email and a wrong password fail alike, and cost alike: an
// unknown email is checked against a dummy hash. Past MaxEmailFailures
// for the email, or MaxClientFailures from the client, within
// FailureWindow, every attempt fails with RateLimited until the window
// moves on, right password or not.
func (s *Service) Login(ctx context.Context, portal, email, password, client string) (string, Session, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	now := s.now()
	since := now - FailureWindow.Milliseconds()
	var byEmail, byClient int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM web_login_failures WHERE email = ? AND at > ?", email, since).Scan(&byEmail); err != nil {
		return "", Session{}, fmt.Errorf("count failures: %w", err)
	}
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM web_login_failures WHERE client = ? AND at > ?", client, since).Scan(&byClient); err != nil {
		return "", Session{}, fmt.Errorf("count failures: %w", err)
	}
	if byEmail >= MaxEmailFailures || byClient >= MaxClientFailures {
		return "", Session{}, errs.E(errs.RateLimited, "too many failed log-ins: try again in %d minutes", int(FailureWindow.Minutes()))
	}
	var hash string
	u, err := scanUser(s.db.QueryRow(ctx, "SELECT "+userCols+", u.password_hash FROM web_users u WHERE u.portal = ? AND u.email = ?", portal, email), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		hash, err = s.dummy(), nil
	}
	if err != nil {
		return "", Session{}, fmt.Errorf("find user: %w", err)
	}
	if !verifyPassword(hash, password) || u.ID == 0 {
		if _, err := s.db.Exec(ctx, "INSERT INTO web_login_failures (email, client, at) VALUES (?, ?, ?)", email, client, now); err != nil {
			return "", Session{}, fmt.Errorf("record failure: %w", err)
		}
		return "", Session{}, ErrBadLogin
	}
	token := secret.Token(sessionTokenPrefix)
	sess := Session{User: u, CSRF: secret.Random(32), ExpiresAt: now + SessionLifetime.Milliseconds()}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
			secret.Hash(token), u.ID, sess.CSRF, now, sess.ExpiresAt); err != nil {
			return err
		}
		// A success clears the email's failures; expired sessions go.
		if _, err := tx.Exec(ctx, "DELETE FROM web_login_failures WHERE email = ?", email); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM web_sessions WHERE user_id = ? AND expires_at < ?", u.ID, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE web_users SET last_login_at = ? WHERE id = ?", now, u.ID)
		return err
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("open session: %w", err)
	}
	sess.User.LastLoginAt = &now
	return token, sess, nil
}

// Session returns the live session of a cookie token.
func (s *Service) Session(ctx context.Context, token string) (Session, error) {
	if !strings.HasPrefix(token, sessionTokenPrefix+"_") {
		return Session{}, errs.E(errs.Unauthorized, "not logged in")
	}
	var sess Session
	u, err := scanUser(s.db.QueryRow(ctx, "SELECT "+userCols+", s.csrf, s.expires_at FROM web_sessions s JOIN web_users u ON u.id = s.user_id WHERE s.token_hash = ?",
		secret.Hash(token)), &sess.CSRF, &sess.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && sess.ExpiresAt <= s.now()) {
		return Session{}, errs.E(errs.Unauthorized, "not logged in")
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	sess.User = u
	return sess, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, token string) error {
	if _, err := s.db.Exec(ctx, "DELETE FROM web_sessions WHERE token_hash = ?", secret.Hash(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// hashPassword returns the PHC string of password under argon2id.
func hashPassword(password string) (string, error) {
	salt := []byte(secret.Random(argonSaltLen))
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword checks password against a PHC argon2id string, with the
// parameters the string names (so that raising them later keeps old
// hashes working).
func verifyPassword(phc, password string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(password) > maxPasswordLength {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
