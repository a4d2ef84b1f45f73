package logsource

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// identity names one file independently of its path: device and inode.
// A rotated file keeps its identity under its new name; a new file at the
// same path has another.
type identity struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func identityOf(fi fs.FileInfo) (identity, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return identity{}, false
	}
	return identity{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, true
}

// state is what survives a restart: which file was being read, and the
// offset just past the last line whose event was handed on.
type state struct {
	Path   string   `json:"path"`
	File   identity `json:"file"`
	Offset int64    `json:"offset"`
}

// stateFile returns the state file for path inside dir: one file per
// followed path, named by a hash of the path.
func stateFile(dir, path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(dir, "logsource-"+hex.EncodeToString(sum[:8])+".json")
}

// loadState reads the state; a missing file is no state (ok false).
func loadState(name string) (state, bool, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, fmt.Errorf("logsource: reading state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil || s.Offset < 0 {
		// A damaged state file is treated as none rather than
		// stopping the source for good.
		return state{}, false, nil
	}
	return s, true, nil
}

// saveState replaces the state file atomically (write, then rename).
func saveState(name string, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".logsource-*")
	if err != nil {
		return fmt.Errorf("logsource: saving state: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("logsource: saving state: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("logsource: saving state: %w", err)
	}
	return nil
}
