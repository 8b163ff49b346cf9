package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
)

func userCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, "usage: partnerd user create --email E (--company KEY [--partner-key PK] | --workspace W) [flags]\n")
		return errors.New("unknown user command")
	}
	fs, db := newFlags("user create --email E (--company KEY [--partner-key PK] | --workspace W) [--role R] [--password-stdin]",
		"Creates a web app user: a vendor user of a company (--company), a partner in the partner portal (--company and\n"+
			"--partner-key), or an agency user of a hub workspace (--workspace, created on first use). Without\n"+
			"--password-stdin a random password is made and printed once. Passwords are stored as argon2id hashes.", stderr)
	email := fs.String("email", "", "the user's email, their log-in (required)")
	name := fs.String("name", "", "the user's name")
	company := fs.String("company", "", "a company's key: a vendor user, or with --partner-key a partner")
	partnerKey := fs.String("partner-key", "", "with --company: the partner's key, for the partner portal")
	ws := fs.String("workspace", "", "a hub workspace's key or name: an agency user")
	role := fs.String("role", accounts.Owner, "owner, admin or viewer (partners are viewers of their own partnership)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	password, generated := "", false
	if *fromStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		password, generated = secret.Random(20), true
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	in, err := userInput(ctx, a, *company, *partnerKey, *ws)
	if err != nil {
		return err
	}
	in.Email, in.Name, in.Password, in.Role = *email, *name, password, *role
	if in.Kind == accounts.Partner && *role == accounts.Owner {
		in.Role = accounts.Viewer // the default role means nothing to a partner
	}
	u, err := a.Accounts.CreateUser(ctx, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s user %s (%s)\n", u.Kind, u.Email, u.Role)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", password)
	}
	return nil
}

// userInput finds what the new user belongs to.
func userInput(ctx context.Context, a *app.App, company, partnerKey, ws string) (accounts.UserInput, error) {
	switch {
	case ws != "" && company == "" && partnerKey == "":
		w, err := a.Hub.EnsureWorkspace(ctx, ws)
		if err != nil {
			return accounts.UserInput{}, err
		}
		return accounts.UserInput{Kind: accounts.Agency, WorkspaceID: w.ID}, nil
	case company != "" && ws == "":
		c, err := a.Program.CompanyByKey(ctx, company)
		if err != nil {
			return accounts.UserInput{}, err
		}
		if partnerKey == "" {
			return accounts.UserInput{Kind: accounts.Vendor, CompanyID: c.ID}, nil
		}
		ps, err := a.Program.GetPartnership(ctx, program.Principal{CompanyID: c.ID, CompanyKey: c.Key, CompanyName: c.Name}, partnerKey)
		if err != nil {
			return accounts.UserInput{}, err
		}
		return accounts.UserInput{Kind: accounts.Partner, CompanyID: c.ID, PartnershipID: ps.ID}, nil
	}
	return accounts.UserInput{}, errors.New("give --company (a vendor user), --company and --partner-key (a partner), or --workspace (an agency user)")
}
