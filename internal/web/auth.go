package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
)

const (
	sessionCookie = "partnerd_session"
	// loginCookie carries the log-in form's CSRF token before there is a
	// session (double submit: the form's field must equal the cookie).
	loginCookie = "partnerd_login"
	// maxForm bounds a form body; uploads have their own limit.
	maxForm = 1 << 20
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// cookie sets a cookie the way every cookie of the app is set: HttpOnly,
// SameSite=Lax, and Secure when the request came over TLS.
func cookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil}
	if maxAge < 0 {
		c.MaxAge = -1
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, c)
}

// sessionOf is the request's live session, or nil.
func (s *Server) sessionOf(r *http.Request) *accounts.Session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	sess, err := s.Accounts.Session(r.Context(), c.Value)
	if err != nil {
		if errs.CodeOf(err) != errs.Unauthorized {
			s.Log.Error("read session", "err", err)
		}
		return nil
	}
	return &sess
}

// checkForm guards every POST: a body of bounded size; an Origin, when the
// browser sends one, that is this host; and the form's csrf field equal to
// the session's token (or, before log-in, to the log-in cookie).
func (s *Server) checkForm(r *http.Request, sess *accounts.Session) error {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errs.E(errs.Forbidden, "this form was sent from another site")
		}
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		// An upload: files past 8 MiB go to temporary files, removed when
		// the request ends.
		r.Body = http.MaxBytesReader(nil, r.Body, maxUpload)
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return errs.E(errs.Invalid, "the upload is too large (limit %d MiB)", maxUpload>>20)
			}
			return errs.E(errs.Invalid, "the upload could not be read: %v", err)
		}
	} else {
		r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			return errs.E(errs.Invalid, "the form could not be read: %v", err)
		}
	}
	got := r.PostFormValue("csrf")
	want := ""
	if sess != nil {
		want = sess.CSRF
	} else if c, err := r.Cookie(loginCookie); err == nil {
		want = c.Value
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errs.E(errs.Forbidden, "this form has expired or did not come from partnerd: reload the page and try again")
	}
	return nil
}

type loginView struct {
	Portal string
	Action string
	CSRF   string
	Email  string
	Next   string
}

// loginForm shows the log-in form of a portal, with a fresh CSRF cookie.
func (s *Server) loginForm(portal string) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
		if sess != nil && sess.User.Portal == portal {
			http.Redirect(w, r, homeOf(sess), http.StatusSeeOther)
			return nil
		}
		return s.showLogin(w, r, portal, http.StatusOK, "", "")
	}
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, portal string, status int, email, problem string) error {
	token := secret.Random(32)
	cookie(w, r, loginCookie, token, time.Hour)
	v := loginView{Portal: portal, Action: "/login", CSRF: token, Email: email, Next: safeNext(r.FormValue("next"))}
	title := "Log in to partnerd"
	if portal == accounts.PortalPartner {
		v.Action, title = "/portal/login", "Partner portal"
	}
	return s.render(w, status, "login", view{Title: title, Error: problem, Data: v})
}

// safeNext keeps a post-log-in redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	return next
}

func (s *Server) login(portal string) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, _ *accounts.Session) error {
		email := r.PostFormValue("email")
		token, sess, err := s.Accounts.Login(r.Context(), portal, email, r.PostFormValue("password"), clientOf(r))
		if err != nil {
			switch errs.CodeOf(err) {
			case errs.Unauthorized:
				return s.showLogin(w, r, portal, http.StatusUnauthorized, email, errs.MessageOf(err))
			case errs.RateLimited:
				return s.showLogin(w, r, portal, http.StatusTooManyRequests, email, errs.MessageOf(err))
			}
			return err
		}
		cookie(w, r, loginCookie, "", -1)
		cookie(w, r, sessionCookie, token, accounts.SessionLifetime)
		target := safeNext(r.PostFormValue("next"))
		if target == "" {
			target = homeOf(&sess)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return nil
	}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.Accounts.Logout(r.Context(), c.Value); err != nil {
			return err
		}
	}
	cookie(w, r, sessionCookie, "", -1)
	target := "/login"
	if sess.User.Portal == accounts.PortalPartner {
		target = "/portal/login"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}
