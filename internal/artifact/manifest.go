package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Manifest maps the slash-separated relative paths of a directory's files to their
// digests. It lets a model's working directory (circuit, keys) be rebuilt, verified,
// on any machine that can reach the Store.
type Manifest map[string]Digest

// Snapshot stores every regular file under dir and returns its manifest.
func Snapshot(ctx context.Context, s Store, dir string) (Manifest, error) {
	m := Manifest{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dg, _, err := s.Put(ctx, f)
		if err != nil {
			return err
		}
		m[filepath.ToSlash(rel)] = dg
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("artifact: snapshot %s: %w", dir, err)
	}
	return m, nil
}

// Materialize makes dir hold the files of m. A file that is missing, or whose size
// differs from the blob's (or, up to 1 MiB, whose content does), is fetched from s, checksum-verified, and renamed into
// place; files not in m are left alone.
func Materialize(ctx context.Context, s Store, m Manifest, dir string) error {
	paths := make([]string, 0, len(m))
	for p := range m {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			return fmt.Errorf("artifact: manifest path %q escapes the directory", p)
		}
		if err := materialize(ctx, s, m[p], filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return fmt.Errorf("artifact: materialize %s: %w", p, err)
		}
	}
	return nil
}

// smallFile is the size up to which a local file is compared with its blob by content,
// not only by size: metadata (a manifest, a ceremony's state.json) that another process
// rewrote may keep its size, and it is cheap to hash.
const smallFile = 1 << 20

func materialize(ctx context.Context, s Store, d Digest, dst string) error {
	if st, ok := s.(interface{ Path(Digest) string }); ok {
		if want, err := os.Stat(st.Path(d)); err == nil {
			if have, err := os.Stat(dst); err == nil && have.Size() == want.Size() {
				if have.Size() > smallFile {
					return nil
				}
				if b, err := os.ReadFile(dst); err == nil && Sum(b) == d {
					return nil
				}
			}
		}
	} else if _, err := os.Stat(dst); err == nil {
		return nil
	}
	rc, err := s.Open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, rc) // fails with ErrCorrupt on a checksum mismatch
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
