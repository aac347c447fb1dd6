package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"varco.dev/cloud/mqtt"
)

// DefaultMosquittoDir is where mosquitto-config writes, and where
// deploy/mosquitto/mosquitto.conf reads, the acl and passwd files.
const DefaultMosquittoDir = "/etc/mosquitto/varco"

// MosquittoConfig writes dir/acl and dir/passwd, the files with which an
// external Mosquitto enforces the embedded broker's policy, for the users of
// usersFile (mqtt.ParseUsers). A user already in dir/passwd keeps its hash,
// so running it again after adding edges changes no one's password; every
// other user gets a new random password, printed to stdout as "USERNAME
// PASSWORD" lines, once: only its hash is kept. Users no longer in the users
// file are dropped. Each file is replaced atomically and keeps its mode and
// owner, so that Mosquitto can still read it; a new passwd is 0640, of the
// group mosquitto where there is one.
func MosquittoConfig(usersFile, dir string, stdout io.Writer) (created int, err error) {
	f, err := os.Open(usersFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	users, err := mqtt.ParseUsers(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", usersFile, err)
	}
	passwdPath, aclPath := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	hashes := map[string]string{}
	if b, err := os.ReadFile(passwdPath); err == nil {
		if hashes, err = mqtt.ReadMosquittoPasswords(bytes.NewReader(b)); err != nil {
			return 0, fmt.Errorf("%s: %w", passwdPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	var passwords bytes.Buffer // printed only once both files are written
	for _, u := range users {
		if _, ok := hashes[u.Username]; ok {
			continue
		}
		password := rand.Text() // 130 random bits
		if hashes[u.Username], err = mqtt.MosquittoHash(password); err != nil {
			return 0, err
		}
		fmt.Fprintf(&passwords, "%s %s\n", u.Username, password)
		created++
	}
	var acl, passwd bytes.Buffer
	if err := mqtt.WriteMosquittoACL(&acl, users); err != nil {
		return 0, err
	}
	if err := mqtt.WriteMosquittoPasswords(&passwd, users, hashes); err != nil {
		return 0, err
	}
	if err := writeFileAtomic(aclPath, acl.Bytes(), 0o644); err != nil {
		return 0, err
	}
	if err := writeFileAtomic(passwdPath, passwd.Bytes(), 0o640); err != nil {
		return 0, err
	}
	_, err = stdout.Write(passwords.Bytes())
	return created, err
}

// mosquittoGroup is the group of Debian's mosquitto user, which Mosquitto
// runs as once it has dropped root, and reads its files as.
const mosquittoGroup = "mosquitto"

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, with the mode and owner of the file it replaces; a new
// file gets perm and, where it exists, the group mosquittoGroup.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
		if err := chownLike(tmp, fi); err != nil {
			return fmt.Errorf("%s: keep its owner: %w", path, err)
		}
	} else if err := chgrp(tmp, mosquittoGroup); err != nil {
		return fmt.Errorf("%s: group %s: %w", path, mosquittoGroup, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
