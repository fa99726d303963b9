package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// annotationTag is on every experiment's annotation; every dashboard of
// deploy/grafana/dashboards shows the annotations with it (a test holds them
// equal).
const annotationTag = "chaos"

// annotator posts each experiment's start and end to Grafana's
// annotations API, so that every dashboard shows when it ran (tags: chaos
// and the experiment's name). make local has no Grafana: the runner says
// so once and goes on (the journal has the times).
type annotator struct {
	url, user, password string
	client              *http.Client
}

// start posts the start of an experiment; the id is for end.
func (a *annotator) start(ctx context.Context, e *Experiment, at time.Time) (int64, error) {
	var out struct {
		ID int64 `json:"id"`
	}
	err := a.send(ctx, http.MethodPost, "/api/annotations", map[string]any{
		"time": at.UnixMilli(),
		"tags": []string{annotationTag, e.Name},
		"text": "chaos: " + e.Title + " (started)",
	}, &out)
	if err == nil && out.ID == 0 {
		err = fmt.Errorf("grafana answered no annotation id")
	}
	return out.ID, err
}

// end turns the start's annotation into a region up to end, with the
// verdict.
func (a *annotator) end(ctx context.Context, id int64, e *Experiment, at time.Time, verdict string) error {
	return a.send(ctx, http.MethodPatch, fmt.Sprintf("/api/annotations/%d", id), map[string]any{
		"timeEnd": at.UnixMilli(),
		"tags":    []string{annotationTag, e.Name},
		"text":    "chaos: " + e.Title + ": " + verdict,
	}, nil)
}

func (a *annotator) send(ctx context.Context, method, path string, body, out any) error {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(a.user, a.password)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
