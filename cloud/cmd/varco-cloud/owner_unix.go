//go:build unix

package main

import (
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// chownLike gives f the owner and group of the file that fi describes.
func chownLike(f *os.File, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}

// chgrp gives f the group named group, if there is one: Mosquitto reads its
// files as its own user, after it drops root, mosquitto on Debian.
func chgrp(f *os.File, group string) error {
	g, err := user.LookupGroup(group)
	if err != nil {
		return nil // no such group: the installer sets the file's owner
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return nil
	}
	return f.Chown(-1, gid)
}
