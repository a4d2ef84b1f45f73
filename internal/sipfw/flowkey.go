package sipfw

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FlowKeyFile is the name of the flow-token key inside data_dir.
//
// Why the key is persisted: the PBX keeps the Path of a registration
// (FreeSWITCH: fs_path) for as long as the registration lives, an hour or
// more, and routes calls to the phone with it. A key drawn anew at every
// start would make every stored Path fail verification after a restart, and
// phones behind NAT would be unreachable until they registered again.
const FlowKeyFile = "flow.key"

// LoadOrCreateFlowKey returns the key kept in <dataDir>/flow.key, creating
// the file (mode 0600, FlowKeyLen random bytes) on first use. A file that
// group or others may read, or of the wrong length, is refused: whoever
// holds the key can mint flow tokens that make the proxy send anywhere.
func LoadOrCreateFlowKey(dataDir string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	path := filepath.Join(dataDir, FlowKeyFile)
	k, err := readFlowKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = randomFlowKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readFlowKey(path) // another process created it first
	}
	if err != nil {
		return nil, fmt.Errorf("creating flow key: %w", err)
	}
	_, werr := f.Write(k)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("writing flow key %s: %w", path, err)
	}
	return k, nil
}

func readFlowKey(path string) ([]byte, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("flow key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("flow key %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("flow key %s has mode %04o, group or others may read it: chmod 600 it", path, st.Mode().Perm())
	}
	k, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading flow key: %w", err)
	}
	if len(k) != FlowKeyLen {
		return nil, fmt.Errorf("flow key %s holds %d bytes, want %d: delete it to have a new one generated (phones then register again)", path, len(k), FlowKeyLen)
	}
	return k, nil
}
