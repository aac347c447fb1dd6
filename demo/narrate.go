package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"varco.dev/firmware-sim/scenario"
	"varco.dev/firmware-sim/sim"
)

// story is the narrated part: every step says what happens, shows the
// readers, and checks that the system did it.
func (d *run) story(ctx context.Context) error {
	c := &d.club
	anna := c.anna

	d.heading("%s badges at the entrance", anna.first)
	if err := d.badge(ctx, 1, anna, "expect 1 grant", "expect 1 display Welcome"); err != nil {
		return err
	}

	d.heading("staff create a message-and-block CRM action for %s through the API", anna.first)
	before, err := d.edgeHealth(ctx)
	if err != nil {
		return err
	}
	var action struct {
		ID      int64 `json:"id"`
		Version int   `json:"version"`
	}
	began := time.Now()
	if err := d.api.do(ctx, http.MethodPost, "/api/v1/actions", map[string]any{
		"member_id": anna.id, "type_id": c.blockType, "description": "Medical certificate expired on the 20th: ask for the new one.",
		"complete_by": time.Now().Format(time.DateOnly),
	}, &action); err != nil {
		return err
	}
	d.say("POST /api/v1/actions → action %d: %q", action.ID, blockText)
	if err := d.reachesEdge(ctx, before.CacheVersion, began); err != nil {
		return err
	}

	d.heading("%s badges at the entrance again", anna.first)
	if err := d.badge(ctx, 1, anna, "expect 1 deny", "expect 1 display \"See reception: medical certificate expired\"", "expect 1 gate closed for 1s"); err != nil {
		return err
	}

	d.heading("the block is for the entrance only: %s can still leave by the exit", anna.first)
	if err := d.badge(ctx, 2, anna, "expect 2 grant"); err != nil {
		return err
	}

	d.heading("reception checks the new certificate and closes the action")
	before, err = d.edgeHealth(ctx)
	if err != nil {
		return err
	}
	began = time.Now()
	if err := d.api.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/actions/%d/advance", action.ID), map[string]any{
		"mode": "close", "outcome_id": c.doneID, "version": action.Version,
	}, nil); err != nil {
		return err
	}
	d.say("POST /api/v1/actions/%d/advance (close, outcome Done)", action.ID)
	if err := d.reachesEdge(ctx, before.CacheVersion, began); err != nil {
		return err
	}

	d.heading("%s badges and passes, greeted", anna.first)
	if err := d.badge(ctx, 1, anna, "expect 1 grant", "expect 1 display Welcome"); err != nil {
		return err
	}

	d.heading("every passage reached the cloud")
	if err := d.waitFor(ctx, "the edge's journal to be acknowledged by the cloud", 30*time.Second, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		h, err := d.edgeHealth(ctx)
		return err == nil && h.JournalBacklog == 0, err
	}); err != nil {
		return err
	}
	var passages struct {
		Items []struct {
			At       time.Time `json:"at"`
			Reader   string    `json:"reader"`
			Decision string    `json:"decision"`
			Reason   string    `json:"reason"`
		} `json:"items"`
	}
	if err := d.api.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/members/%d/passages", anna.id), nil, &passages); err != nil {
		return err
	}
	for _, p := range slices.Backward(passages.Items) { // the API lists the newest first
		d.say("%s  %-10s %-5s %s", p.At.Local().Format("15:04:05.000"), p.Reader, p.Decision, p.Reason)
	}
	if len(passages.Items) != 4 {
		return fmt.Errorf("GET /api/v1/members/%d/passages lists %d passages, want the 4 of the story", anna.id, len(passages.Items))
	}
	fmt.Fprintf(d.out, "\nThe story went as told: the CRM stopped %s at the turnstile, and let her in again, in a blink.\n", anna.first)
	return nil
}

// badge presents m's card at a reader, checks the expectations (steps of
// the scenario language of varco-sim) and shows the readers.
func (d *run) badge(ctx context.Context, reader int, m member, expect ...string) error {
	// One person at a time: the previous one has gone through.
	if _, err := d.sim.Wait(ctx, func(st sim.State) bool { r, _ := st.Reader(reader); return !r.Gate.Open }); err != nil {
		return fmt.Errorf("the %s gate did not close: %w", readerNames[reader], err)
	}
	d.say("%s presents card %d:%d at the %s reader", m.first, m.facility, m.card, readerNames[reader])
	steps := append([]string{fmt.Sprintf("card %d H10301 %d %d", reader, m.facility, m.card)}, expect...)
	for _, line := range steps {
		st, err := scenario.ParseStep(line)
		if err != nil {
			return fmt.Errorf("demo step %q: %w", line, err)
		}
		if err := d.runner.Do(ctx, st); err != nil {
			writePanel(d.out, readerNames, d.sim.State())
			return err
		}
	}
	// A reader takes one TEXT command per poll: let it draw every row.
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	writePanel(d.out, readerNames, d.sim.State())
	return nil
}

// settle is how long the readers get to draw a whole answer after the
// first of it showed.
const settle = 250 * time.Millisecond

// reachesEdge waits until the edge's cache moves past version from, and
// says how long it took since began (the API call).
func (d *run) reachesEdge(ctx context.Context, from uint64, began time.Time) error {
	var now uint64
	err := d.waitFor(ctx, "the change to reach the edge's cache", 10*time.Second, 2*time.Millisecond, func(ctx context.Context) (bool, error) {
		h, err := d.edgeHealth(ctx)
		now = h.CacheVersion
		return err == nil && now > from, err
	})
	if err != nil {
		return err
	}
	d.say("signed delta applied by the edge: cache version %d → %d, %v after the API call", from, now, time.Since(began).Round(time.Millisecond))
	return nil
}

// edgeHealth is the edge's /healthz.
type edgeHealth struct {
	CacheVersion   uint64 `json:"cache_version"`
	JournalBacklog uint64 `json:"journal_backlog"`
}

func (d *run) edgeHealth(ctx context.Context) (edgeHealth, error) {
	var h edgeHealth
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.edgeHTTP+"/healthz", nil)
	if err != nil {
		return h, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, fmt.Errorf("edge /healthz: %w", err)
	}
	defer resp.Body.Close()
	// 503 while a reader is offline, with the same body.
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("edge /healthz (HTTP %d): %w", resp.StatusCode, err)
	}
	return h, nil
}
