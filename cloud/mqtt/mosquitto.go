package mqtt

import (
	"bufio"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	vsync "varco.dev/protocol/sync"
)

// An external Mosquitto enforces the same policy as the embedded broker
// through two files that `varco-cloud mosquitto-config` writes from a users
// file (deploy/mosquitto/README.md):
//
//   - the acl_file, from edgeTopics, that is from the rule Allowed applies:
//     one "user" block per user, since Mosquitto's "pattern" lines substitute
//     only the whole username or client id ("t1/e1"), which cannot become
//     "varco/v1/t1/edge/e1/…" and does not name the edge's site;
//   - the password_file, in mosquitto_passwd's PBKDF2-SHA512 format, since
//     the embedded broker's argon2id hashes mean nothing to Mosquitto.

// ParseUsers reads a users file: one user a line, "edge TENANT SITE EDGE"
// for an edge (username TENANT/EDGE) or "cloud NAME" for a varco-cloud
// replica; blank lines and lines starting with '#' are skipped. Ids and cloud
// names are sync ids (protocol/sync.ValidateID), which keeps them safe in
// both Mosquitto files. The credentials it returns have no password hash.
func ParseUsers(r io.Reader) ([]Credential, error) {
	var users []Credential
	seen := map[string]int{} // username → line
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var c Credential
		switch {
		case f[0] == "edge" && len(f) == 4:
			c = Credential{Username: EdgeUsername(f[1], f[3]), Tenant: f[1], Site: f[2], Edge: f[3]}
		case f[0] == "cloud" && len(f) == 2:
			c = Credential{Username: f[1], Cloud: true}
		default:
			return nil, fmt.Errorf("users line %d: want \"edge TENANT SITE EDGE\" or \"cloud NAME\"", n)
		}
		if err := validateMosquittoUser(c); err != nil {
			return nil, fmt.Errorf("users line %d: %w", n, err)
		}
		if prev, ok := seen[c.Username]; ok {
			return nil, fmt.Errorf("users line %d: user %s already on line %d", n, c.Username, prev)
		}
		seen[c.Username] = n
		users = append(users, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return users, nil
}

// validateMosquittoUser checks c as Validate does, without a password hash,
// and that a cloud username is a sync id: no ':' (the password file's
// separator), no space and no newline (the ACL's).
func validateMosquittoUser(c Credential) error {
	if err := c.validateUser(); err != nil {
		return err
	}
	if c.Cloud {
		if err := vsync.ValidateID(c.Username); err != nil {
			return fmt.Errorf("cloud credential %q: %w", c.Username, err)
		}
	}
	return nil
}

// WriteMosquittoACL writes a Mosquitto acl_file that grants each user what
// Allowed grants it: a cloud user "topic readwrite #", an edge a "topic
// write" line for each topic it may publish and a "topic read" line for each
// it may subscribe. Mosquitto denies what no line grants.
func WriteMosquittoACL(w io.Writer, users []Credential) error {
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "# Mosquitto acl_file for varco, written by `varco-cloud mosquitto-config` from\n"+
		"# the users file: edit that file and run the command again, then reload\n"+
		"# Mosquitto (SIGHUP). The rules are cloud/mqtt's, the embedded broker's.\n")
	for _, c := range users {
		if err := validateMosquittoUser(c); err != nil {
			return err
		}
		if c.Cloud {
			fmt.Fprintf(bw, "\n# a varco-cloud replica: every topic\nuser %s\ntopic readwrite #\n", c.Username)
			continue
		}
		fmt.Fprintf(bw, "\n# edge %s of tenant %s at site %s\nuser %s\n", c.Edge, c.Tenant, c.Site, c.Username)
		for _, access := range []struct {
			name  string
			write bool
		}{{"write", true}, {"read", false}} {
			for _, topic := range edgeTopics(c, access.write) {
				fmt.Fprintf(bw, "topic %s %s\n", access.name, topic)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("mosquitto acl: %w", err)
	}
	return nil
}

// MosquittoIterations is the PBKDF2 iteration count of MosquittoHash, the
// default of mosquitto_passwd 2.0. It is low, and need not be higher for
// the passwords `varco-cloud mosquitto-config` generates (130 random bits),
// while every connect costs Mosquitto's single thread one hash.
const MosquittoIterations = 101

const (
	mosquittoSaltLen = 12 // mosquitto_passwd's
	mosquittoHashLen = sha512.Size
)

// MosquittoHash hashes password as mosquitto_passwd does, for Mosquitto's
// password_file: "$7$" iterations "$" base64(salt) "$" base64(PBKDF2-SHA512).
func MosquittoHash(password string) (string, error) {
	salt := make([]byte, mosquittoSaltLen)
	_, _ = rand.Read(salt) // never fails
	return mosquittoHash(password, salt, MosquittoIterations)
}

func mosquittoHash(password string, salt []byte, iterations int) (string, error) {
	if password == "" {
		return "", fmt.Errorf("mosquitto hash: empty password")
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, mosquittoHashLen)
	if err != nil {
		return "", fmt.Errorf("mosquitto hash: %w", err)
	}
	b64 := base64.StdEncoding
	return "$7$" + strconv.Itoa(iterations) + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

// CheckMosquittoHash reports whether password matches hash, a "$7$" hash
// of mosquitto_passwd or MosquittoHash.
func CheckMosquittoHash(password, hash string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false, fmt.Errorf("mosquitto hash: not a $7$ hash")
	}
	iterations, err := strconv.Atoi(parts[2])
	if err != nil || iterations < 1 {
		return false, fmt.Errorf("mosquitto hash: iterations %q", parts[2])
	}
	salt, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return false, fmt.Errorf("mosquitto hash: salt: %w", err)
	}
	got, err := mosquittoHash(password, salt, iterations)
	if err != nil {
		return false, err
	}
	return got == hash, nil
}

// ReadMosquittoPasswords reads a Mosquitto password_file: "username:hash"
// lines. It returns the hashes by username.
func ReadMosquittoPasswords(r io.Reader) (map[string]string, error) {
	hashes := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("mosquitto password file line %d: want username:hash", n)
		}
		if _, dup := hashes[user]; dup {
			return nil, fmt.Errorf("mosquitto password file line %d: user %s twice", n, user)
		}
		hashes[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mosquitto password file: %w", err)
	}
	return hashes, nil
}

// WriteMosquittoPasswords writes a Mosquitto password_file with a line for
// each user, in order, with its hash from hashes (username → hash).
func WriteMosquittoPasswords(w io.Writer, users []Credential, hashes map[string]string) error {
	bw := bufio.NewWriter(w)
	for _, c := range users {
		if err := validateMosquittoUser(c); err != nil {
			return err
		}
		hash := hashes[c.Username]
		if !strings.HasPrefix(hash, "$7$") || strings.ContainsAny(hash, ":\n") {
			return fmt.Errorf("mosquitto password file: user %s: no $7$ hash", c.Username)
		}
		fmt.Fprintf(bw, "%s:%s\n", c.Username, hash)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("mosquitto password file: %w", err)
	}
	return nil
}
