package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
)

// anomalyModelFile is the model's file in data_dir.
const anomalyModelFile = "anomaly.model"

// anomalyPage is how many events one store query reads while learning the
// window (a variable for the paging test).
var anomalyPage = 5000

// anomalyKinds are the events the baseline learns from.
var anomalyKinds = []event.Kind{event.KindCallAttempt, event.KindCallEnded, event.KindRegister}

// startAnomaly learns the baseline from the store's events of the last
// anomaly.window and gives the engine a model: the one in
// <data_dir>/anomaly.model when it was trained less than anomaly.retrain
// ago, else a new one, saved there. With too few call attempts to train
// (a new install) the engine learns without scoring until the next
// retrain. It returns when the model in use will be due for retraining.
func (g *Guard) startAnomaly(ctx context.Context, cfg *config.Config) (time.Time, error) {
	acfg := cfg.Anomaly.Model().WithDefaults()
	path := filepath.Join(cfg.DataDir, anomalyModelFile)
	m, err := readAnomalyModel(path)
	if err != nil {
		return time.Time{}, err
	}
	now := g.now()
	if m != nil && now.Sub(m.Trained()) >= acfg.Retrain {
		m = nil // stale
	}
	start := time.Now()
	b, tr, err := g.learnWindow(ctx, acfg)
	if err != nil {
		return time.Time{}, err
	}
	if m != nil {
		g.eng.Anomaly().Replace(b, m)
		g.log.Info("anomaly model loaded", "file", path, "trained", m.Trained(), "accounts", b.Accounts(), "took", time.Since(start).Round(time.Millisecond))
		return m.Trained().Add(acfg.Retrain), nil
	}
	m, err = g.fitAnomaly(tr, path)
	g.eng.Anomaly().Replace(b, m)
	if err != nil {
		g.log.Warn("anomaly model not trained: call attempts are learnt, not scored, until the next retrain", "err", err)
	} else {
		g.log.Info("anomaly model trained", "attempts", m.Rows(), "accounts", b.Accounts(), "took", time.Since(start).Round(time.Millisecond))
	}
	return now.Add(acfg.Retrain), nil
}

// retrainAnomaly rebuilds the model every anomaly.retrain, from due on.
func (g *Guard) retrainAnomaly(ctx context.Context, due time.Time) {
	for {
		t := time.NewTimer(max(due.Sub(g.now()), time.Minute))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		due = g.now().Add(g.config().Anomaly.Model().WithDefaults().Retrain)
		if err := g.retrainOnce(ctx); err != nil {
			g.log.Warn("anomaly retrain: the current model stays", "err", err)
		}
	}
}

// retrainOnce fits a new model from the store's window, saves it and
// swaps it in; the guard keeps scoring with the old one meanwhile. The
// live baseline is kept (it has learnt every event since the start)
// unless a reload changed the baseline's settings.
func (g *Guard) retrainOnce(ctx context.Context) error {
	cfg := g.config()
	acfg := cfg.Anomaly.Model().WithDefaults()
	b, tr, err := g.learnWindow(ctx, acfg)
	if err != nil {
		return err
	}
	m, err := g.fitAnomaly(tr, filepath.Join(cfg.DataDir, anomalyModelFile))
	if m == nil {
		return err
	}
	st := g.eng.Anomaly()
	if st.Config().SameBaseline(acfg) {
		st.SetModel(m)
	} else {
		st.Replace(b, m)
	}
	g.log.Info("anomaly model retrained", "attempts", m.Rows(), "accounts", b.Accounts())
	return err // saving failed: the new model is in use all the same
}

// fitAnomaly fits tr's model and saves it at path. The model is returned
// when only saving failed.
func (g *Guard) fitAnomaly(tr *anomaly.Trainer, path string) (*anomaly.Model, error) {
	m, err := tr.Fit()
	if err != nil {
		return nil, err
	}
	if err := writeAnomalyModel(path, m); err != nil {
		return m, err
	}
	return m, nil
}

// learnWindow feeds the store's call events and registrations of the last
// window, oldest first, to a new baseline's Trainer. The store answers
// newest first, so the window is read a day at a time (each day in pages,
// then in reverse): only one day's events are held.
func (g *Guard) learnWindow(ctx context.Context, cfg anomaly.Config) (*anomaly.Baseline, *anomaly.Trainer, error) {
	b, err := anomaly.NewBaseline(anomaly.Options{Config: cfg})
	if err != nil {
		return nil, nil, err
	}
	tr := anomaly.NewTrainer(b)
	now := g.now()
	var day []event.Event
	for from := now.Add(-cfg.Window); from.Before(now); from = from.Add(24 * time.Hour) {
		day = day[:0]
		until := from.Add(24 * time.Hour)
		if until.After(now) {
			until = now
		}
		for {
			recs, err := g.st.Query(ctx, store.Filter{Kinds: anomalyKinds, Since: from, Until: until, Limit: anomalyPage})
			if err != nil {
				return nil, nil, fmt.Errorf("reading call events for the anomaly model: %w", err)
			}
			for _, r := range recs {
				day = append(day, r.Event)
			}
			if len(recs) < anomalyPage {
				break
			}
			until = recs[len(recs)-1].Time // newest first: the next page is older
		}
		slices.Reverse(day)
		for _, ev := range day {
			tr.Observe(ev)
		}
	}
	return b, tr, nil
}

// readAnomalyModel reads the model file; nil without one. A file group or
// others may write or read is refused: a model decides what is blocked.
func readAnomalyModel(path string) (*anomaly.Model, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the anomaly model: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the anomaly model: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("anomaly model %s has mode %04o, group or others may read or change it: chmod 600 it or delete it", path, perm)
	}
	m, err := anomaly.ReadModel(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w (delete it to retrain)", path, err)
	}
	return m, nil
}

// writeAnomalyModel saves m at path, mode 0600, replacing the old file
// atomically.
func writeAnomalyModel(path string, m *anomaly.Model) error {
	f, err := os.CreateTemp(filepath.Dir(path), anomalyModelFile+".*")
	if err != nil {
		return fmt.Errorf("saving the anomaly model: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		err = anomaly.WriteModel(f, m)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving the anomaly model: %w", err)
	}
	return nil
}
