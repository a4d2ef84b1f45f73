package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the name of the checkpoint signing key in the data directory.
const KeyFile = "store.key"

const pemType = "TOLLGUARD STORE ED25519 SEED"

// checkpoint is a signed statement that the chain's record Seq has Hash.
type checkpoint struct {
	Node   string
	Seq    int64
	Hash   []byte
	TimeUS int64
	Sig    []byte
}

// message is what a checkpoint's signature covers: version 1 for node ""
// (as before nodes existed), version 2 with the node's name.
func (c *checkpoint) message() []byte {
	b := []byte("tollguard-checkpoint-v1")
	if c.Node != "" {
		b = []byte("tollguard-checkpoint-v2")
		b = binary.AppendUvarint(b, uint64(len(c.Node)))
		b = append(b, c.Node...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(c.TimeUS))
	return append(b, c.Hash...)
}

func (c *checkpoint) sign(k ed25519.PrivateKey) { c.Sig = ed25519.Sign(k, c.message()) }

func (c *checkpoint) valid(pub ed25519.PublicKey) bool {
	return ed25519.Verify(pub, c.message(), c.Sig)
}

// loadKey reads <dir>/store.key, creating it (mode 0600) when create is set
// and it does not exist.
func loadKey(dir string, create bool) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return newKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemType || len(blk.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("reading signing key %s: not a %s PEM block", path, pemType)
	}
	return ed25519.NewKeyFromSeed(blk.Bytes), nil
}

func newKey(path string) (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, privateFileMode)
	if err != nil {
		return nil, fmt.Errorf("creating signing key: %w", err)
	}
	if err := f.Chmod(privateFileMode); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating signing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: pemType, Bytes: k.Seed()}); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	return k, nil
}
