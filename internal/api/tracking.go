package api

import (
	"html"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/tracking"
)

// hostOnly strips the port from a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(hostport)
}

func clientIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// redirect answers GET /r/{slug}.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request) {
	s.click(w, r, r.PathValue("slug"), false)
}

func (s *Server) click(w http.ResponseWriter, r *http.Request, slug string, onLinkDomain bool) bool {
	red, err := s.tracking.Click(r.Context(), tracking.Visit{Host: hostOnly(r.Host), OnLinkDomain: onLinkDomain, Slug: slug,
		Query: r.URL.Query(), Referrer: r.Referer(), UserAgent: r.UserAgent(), IP: clientIP(r), Probe: r.Method == http.MethodHead})
	if err != nil {
		if onLinkDomain && errs.CodeOf(err) == errs.NotFound {
			return false
		}
		status := statusOf[errs.CodeOf(err)]
		if status >= 500 {
			s.log.ErrorContext(r.Context(), "redirect failed", "err", err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		msg := "This referral link does not exist."
		if status >= 500 {
			msg = "This referral link cannot be followed right now. Please try again."
		}
		_, _ = w.Write([]byte("<!doctype html><meta charset=utf-8><title>Link not found</title><p>" + html.EscapeString(msg) + "</p>\n"))
		return true
	}
	secure := r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
	for _, c := range red.Cookies {
		http.SetCookie(w, &http.Cookie{Name: c.Name, Value: c.Value, Domain: c.Domain, Path: "/", MaxAge: c.MaxAge,
			SameSite: http.SameSiteLaxMode, Secure: secure})
	}
	w.Header().Set("Cache-Control", "no-store") // every click is a new click id
	w.Header().Set("Referrer-Policy", "no-referrer-when-downgrade")
	http.Redirect(w, r, red.Location, http.StatusFound)
	return true
}

var baseHostRe = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)

// requestBase is the scheme and host the caller used to reach partnerd.
func requestBase(r *http.Request) (string, bool) {
	if !baseHostRe.MatchString(r.Host) {
		return "", false
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host, true
}

// snippet serves the PartnerStackJS-compatible script.
func (s *Server) snippet(w http.ResponseWriter, r *http.Request) {
	base, ok := requestBase(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, errorBody{Message: "invalid Host header", Status: http.StatusBadRequest})
		return
	}
	plain, gz := s.js.Render(base)
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Vary", "Accept-Encoding, Host")
	body := plain
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		body = gz
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// cors checks a browser request's Origin against the sites of the company
// behind the public key. Requests without an Origin (servers) pass.
func (s *Server) cors(w http.ResponseWriter, r *http.Request, p program.Principal) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	c, err := s.program.CompanyByID(r.Context(), p.CompanyID)
	if err != nil {
		return err
	}
	if !slices.Contains(c.SignupOrigins(), origin) {
		return errs.E(errs.Forbidden, "Forbidden: %s is not one of this program's sites (partnerd program configure --allowed-origin)", origin)
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Vary", "Origin")
	return nil
}

func (s *Server) jsPrincipal(w http.ResponseWriter, r *http.Request, publicKey string) (program.Principal, error) {
	p, err := s.program.PublicKeyPrincipal(r.Context(), publicKey)
	if err != nil {
		return p, err
	}
	return p, s.cors(w, r, p)
}

// jsConfig tells the snippet the program's attribution window.
func (s *Server) jsConfig(w http.ResponseWriter, r *http.Request) error {
	p, err := s.jsPrincipal(w, r, r.URL.Query().Get("public_key"))
	if err != nil {
		return err
	}
	c, err := s.program.CompanyByID(r.Context(), p.CompanyID)
	if err != nil {
		return err
	}
	writeData(w, map[string]int{"attribution_days": c.AttributionDays}, "Tracking settings")
	return nil
}

var signupSchema = schema{fields: []field{
	{name: "public_key", kind: kString, required: true, max: 255},
	{name: "name", kind: kString, nullable: true, max: 100},
	{name: "email", kind: kString, nullable: true, max: 255},
	{name: "customer_key", kind: kString, nullable: true, max: 255},
	{name: "partner_key", kind: kString, nullable: true, max: 255},
	{name: "xid", kind: kString, nullable: true, max: 64},
}}

// jsSignup takes createSignup's post. The snippet sends text/plain so that
// browsers make a simple request with no preflight.
func (s *Server) jsSignup(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, signupSchema)
	if err != nil {
		return err
	}
	p, err := s.jsPrincipal(w, r, *b.str("public_key"))
	if err != nil {
		return err
	}
	res, err := s.tracking.RecordSignup(r.Context(), p, tracking.Signup{Name: deref(b.str("name")), Email: deref(b.str("email")),
		CustomerKey: deref(b.str("customer_key")), PartnerKey: deref(b.str("partner_key")), XID: deref(b.str("xid"))})
	if err != nil {
		return err
	}
	msg := "Signup recorded; no partner referred it"
	if res.Attributed {
		msg = "Signup attributed to " + res.PartnerKey
	}
	writeData(w, map[string]any{"attributed": res.Attributed, "customer_key": res.CustomerKey, "partner_key": res.PartnerKey}, msg)
	return nil
}

// jsPreflight answers CORS preflights for pages that post JSON.
func (s *Server) jsPreflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.Header().Set("Vary", "Origin")
	w.WriteHeader(http.StatusNoContent)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var conversionSchema = schema{fields: []field{
	{name: "xid", kind: kString, required: true, min: 1, max: 64},
	{name: "customer_key", kind: kString, required: true, min: 1, max: 255},
	{name: "email", kind: kString, nullable: true, max: 255},
	{name: "name", kind: kString, nullable: true, max: 100},
	{name: "provider_key", kind: kString, nullable: true, max: 255},
	{name: "ip_address", kind: kString, nullable: true, max: 64},
	{name: "user_agent", kind: kString, nullable: true, max: 1000},
	{name: "origin", kind: kString, nullable: true, max: 255},
	{name: "external_type", kind: kString, nullable: true, max: 255},
	{name: "sub_ids", kind: kStringArray, nullable: true, max: 255},
	{name: "meta", kind: kObject, nullable: true},
}}

// conversion answers PartnerStack's S2S POST /conversion/xid: 200 with an
// empty body, as PartnerStack does; errors use the error envelope.
func (s *Server) conversion(w http.ResponseWriter, r *http.Request) error {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return errs.E(errs.Unauthorized, "Unauthorized: use Authorization: Bearer <tracking token>")
	}
	p, err := s.program.AuthenticateTrackingToken(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return err
	}
	b, err := decodeBody(w, r, conversionSchema)
	if err != nil {
		return err
	}
	in := tracking.Conversion{XID: *b.str("xid"), CustomerKey: *b.str("customer_key"), Email: deref(b.str("email")),
		Name: deref(b.str("name")), ProviderKey: deref(b.str("provider_key")), Meta: b.raw("meta")}
	if subs := b.strs("sub_ids"); subs != nil {
		in.SubIDs = *subs
	}
	if err := s.tracking.Convert(r.Context(), p, in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type linkJSON struct {
	Key            string `json:"key"`
	CreatedAt      int64  `json:"created_at"`
	UpdatedAt      int64  `json:"updated_at"`
	Slug           string `json:"slug"`
	Dest           string `json:"dest"`
	URL            string `json:"url"`
	Default        bool   `json:"default"`
	PartnershipKey string `json:"partnership_key"`
	PartnerKey     string `json:"partner_key"`
	Clicks         int64  `json:"clicks"`
	Signups        int64  `json:"signups"`
}

func (s *Server) renderLinks(r *http.Request, links []program.Link) ([]linkJSON, error) {
	c, err := s.program.CompanyByID(r.Context(), principalOf(r).CompanyID)
	if err != nil {
		return nil, err
	}
	base, _ := requestBase(r)
	out := make([]linkJSON, 0, len(links))
	for _, l := range links {
		u := base + "/r/" + l.Slug
		if c.LinkDomain != "" {
			u = "https://" + c.LinkDomain + "/" + l.Slug
		}
		dest := l.Destination
		if dest == "" {
			dest = c.Website
		}
		out = append(out, linkJSON{Key: l.Key, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Slug: l.Slug, Dest: dest, URL: u,
			Default: l.Default, PartnershipKey: l.PartnershipKey, PartnerKey: l.PartnerKey, Clicks: l.Clicks, Signups: l.Signups})
	}
	return out, nil
}

// listLinks answers GET /api/v2/links/partnership/{id}: a partnership's
// links with their click and sign-up counts. Clicks still in the buffer
// are written first, so the counts include them.
func (s *Server) listLinks(w http.ResponseWriter, r *http.Request) error {
	if err := s.tracking.Flush(r.Context()); err != nil {
		return err
	}
	links, err := s.program.ListLinks(r.Context(), principalOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	items, err := s.renderLinks(r, links)
	if err != nil {
		return err
	}
	writeData(w, list{HasMore: false, Items: items, Total: len(items)}, "Links retrieved")
	return nil
}

var linkSchema = schema{strict: true, fields: []field{
	{name: "slug", kind: kString, required: true, min: 1, max: 100},
	{name: "dest", kind: kString, required: true, min: 1, max: 2000},
}}

// createLink answers POST /api/v2/links/partnership/{id} (a partnerd
// extension: PartnerStack has no public endpoint for it).
func (s *Server) createLink(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, linkSchema)
	if err != nil {
		return err
	}
	l, err := s.program.CreateLink(r.Context(), principalOf(r), r.PathValue("id"), program.LinkInput{Slug: *b.str("slug"), Destination: *b.str("dest")})
	if err != nil {
		return err
	}
	s.tracking.Forget()
	items, err := s.renderLinks(r, []program.Link{l})
	if err != nil {
		return err
	}
	writeData(w, items[0], "Link created")
	return nil
}
