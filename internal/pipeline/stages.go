package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// Outcomes of a deal stage.
const (
	OutcomeOpen = "open"
	OutcomeWon  = "won"
	OutcomeLost = "lost"
)

// Stage is one step of a group's deal pipeline.
type Stage struct {
	Name    string
	Outcome string
}

// DefaultStages are the stages of a group that has not configured its own.
var DefaultStages = []Stage{
	{"open", OutcomeOpen}, {"qualified", OutcomeOpen}, {"proposal", OutcomeOpen}, {"negotiation", OutcomeOpen},
	{"closed won", OutcomeWon}, {"closed lost", OutcomeLost},
}

// maxStages bounds a group's pipeline.
const maxStages = 50

// GroupStages is a group's deal pipeline.
type GroupStages struct {
	GroupKey  string
	GroupName string
	Custom    bool // false: the group uses DefaultStages
	Stages    []Stage
}

// stagesOf reads a group's stages (the defaults when it has none).
func stagesOf(ctx context.Context, q store.Querier, groupID int64) ([]Stage, bool, error) {
	rows, err := q.Query(ctx, "SELECT name, outcome FROM deal_stages WHERE group_id = ? ORDER BY position", groupID)
	if err != nil {
		return nil, false, fmt.Errorf("load deal stages: %w", err)
	}
	defer rows.Close()
	var out []Stage
	for rows.Next() {
		var st Stage
		if err := rows.Scan(&st.Name, &st.Outcome); err != nil {
			return nil, false, fmt.Errorf("scan deal stage: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("load deal stages: %w", err)
	}
	if len(out) == 0 {
		return DefaultStages, false, nil
	}
	return out, true, nil
}

// findStage matches a stage name (case and surrounding spaces aside) in a
// group's stages and returns it as the group spells it.
func findStage(stages []Stage, name string) (Stage, error) {
	want := strings.ToLower(strings.TrimSpace(name))
	names := make([]string, 0, len(stages))
	for _, st := range stages {
		if strings.ToLower(st.Name) == want {
			return st, nil
		}
		names = append(names, st.Name)
	}
	return Stage{}, errs.E(errs.Invalid, "'stage' must be one of the group's deal stages (%s): %q", strings.Join(names, ", "), name)
}

// firstOpen is where a deal starts when no stage is given.
func firstOpen(stages []Stage) Stage {
	for _, st := range stages {
		if st.Outcome == OutcomeOpen {
			return st
		}
	}
	return stages[0]
}

// groupOrDefault resolves a group key, or the company's default group.
func groupOrDefault(ctx context.Context, q store.Querier, companyID int64, key string) (id int64, gkey, name string, err error) {
	query, args := "SELECT id, key, name FROM groups WHERE company_id = ? AND is_default = 1", []any{companyID}
	if key != "" {
		query, args = "SELECT id, key, name FROM groups WHERE company_id = ? AND key = ?", []any{companyID, key}
	}
	err = q.QueryRow(ctx, query, args...).Scan(&id, &gkey, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", "", errs.E(errs.Invalid, "'group_key' does not match any group in this program: %s", key)
	}
	if err != nil {
		return 0, "", "", fmt.Errorf("find group: %w", err)
	}
	return id, gkey, name, nil
}

// DealStages returns a group's deal stages (the default group's when
// groupKey is empty); a partner token reads its own group's, the stages
// its deals move through.
func (s *Service) DealStages(ctx context.Context, p program.Principal, groupKey string) (GroupStages, error) {
	if p.IsPartner() {
		pt, err := findPartnership(ctx, s.db, p, nil, false)
		if err != nil {
			return GroupStages{}, err
		}
		if groupKey != "" && groupKey != pt.groupKey {
			return GroupStages{}, errs.E(errs.Forbidden, "a partner token reads its own group's stages (%s)", pt.groupKey)
		}
		groupKey = pt.groupKey
	}
	id, key, name, err := groupOrDefault(ctx, s.db, p.CompanyID, groupKey)
	if err != nil {
		return GroupStages{}, err
	}
	stages, custom, err := stagesOf(ctx, s.db, id)
	return GroupStages{GroupKey: key, GroupName: name, Custom: custom, Stages: stages}, err
}

// SetDealStages replaces a group's deal stages. An empty list goes back to
// the defaults. Deals keep the stage they are at (and what it meant when
// they reached it); their next stage must be one of the new ones.
func (s *Service) SetDealStages(ctx context.Context, p program.Principal, groupKey string, stages []Stage) (GroupStages, error) {
	if p.Test {
		return GroupStages{}, errs.E(errs.Forbidden, "deal stages are program settings: use your production keys")
	}
	if err := checkStages(stages); err != nil {
		return GroupStages{}, err
	}
	var out GroupStages
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		id, key, name, err := groupOrDefault(ctx, tx, p.CompanyID, groupKey)
		if err != nil {
			return err
		}
		if err := replaceStages(ctx, tx, p.CompanyID, id, stages); err != nil {
			return err
		}
		stored, custom, err := stagesOf(ctx, tx, id)
		out = GroupStages{GroupKey: key, GroupName: name, Custom: custom, Stages: stored}
		return err
	})
	return out, err
}

// checkStages checks (and trims) a group's stages.
func checkStages(stages []Stage) error {
	if len(stages) > maxStages {
		return errs.E(errs.Invalid, "'stages' may have at most %d stages", maxStages)
	}
	seen := map[string]bool{}
	open := false
	for i := range stages {
		st := &stages[i]
		st.Name = strings.TrimSpace(st.Name)
		if st.Name == "" || utf8.RuneCountInString(st.Name) > 100 {
			return errs.E(errs.Invalid, "'stages[%d].name' must be 1 to 100 characters", i)
		}
		if seen[strings.ToLower(st.Name)] {
			return errs.E(errs.Invalid, "'stages[%d].name' repeats the stage %q", i, st.Name)
		}
		seen[strings.ToLower(st.Name)] = true
		switch st.Outcome {
		case OutcomeOpen:
			open = true
		case OutcomeWon, OutcomeLost:
		default:
			return errs.E(errs.Invalid, "'stages[%d].outcome' must be one of open, won, lost", i)
		}
	}
	if len(stages) > 0 && !open {
		return errs.E(errs.Invalid, "'stages' must have at least one open stage, where new deals start")
	}
	return nil
}

func replaceStages(ctx context.Context, q store.Querier, companyID, groupID int64, stages []Stage) error {
	if _, err := q.Exec(ctx, "DELETE FROM deal_stages WHERE group_id = ?", groupID); err != nil {
		return fmt.Errorf("clear deal stages: %w", err)
	}
	for i, st := range stages {
		if _, err := q.Exec(ctx, "INSERT INTO deal_stages (company_id, group_id, position, name, outcome) VALUES (?, ?, ?, ?, ?)",
			companyID, groupID, i, st.Name, st.Outcome); err != nil {
			return fmt.Errorf("store deal stage: %w", err)
		}
	}
	return nil
}
