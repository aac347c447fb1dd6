package cloud

// Versioned is an entity edited with optimistic concurrency: every edit
// names the version it read (an ETag over HTTP), and a stale one is refused.
type Versioned interface {
	RowVersion() int
}

// RowVersion implements Versioned.
func (o *Operator) RowVersion() int { return o.Version }

// RowVersion implements Versioned.
func (s *Site) RowVersion() int { return s.Version }

// RowVersion implements Versioned.
func (g *Gate) RowVersion() int { return g.Version }

// RowVersion implements Versioned.
func (m *Member) RowVersion() int { return m.Version }

// RowVersion implements Versioned.
func (c *Credential) RowVersion() int { return c.Version }

// RowVersion implements Versioned.
func (m *Membership) RowVersion() int { return m.Version }

// RowVersion implements Versioned.
func (i *Instalment) RowVersion() int { return i.Version }

// RowVersion implements Versioned.
func (b *Booking) RowVersion() int { return b.Version }

// RowVersion implements Versioned.
func (t *ActionType) RowVersion() int { return t.Version }

// RowVersion implements Versioned.
func (o *Outcome) RowVersion() int { return o.Version }

// RowVersion implements Versioned.
func (a *Action) RowVersion() int { return a.Version }
