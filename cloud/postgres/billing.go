package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

const instalmentCols = `id, tenant_id, member_id, membership_id, description, amount_cents, currency, due_on, paid_at, cancelled,
	version, created_at, updated_at`

func scanInstalment(row pgx.Row) (*cloud.Instalment, error) {
	var in cloud.Instalment
	var due time.Time
	if err := row.Scan(&in.ID, &in.TenantID, &in.MemberID, &in.MembershipID, &in.Description, &in.AmountCents, &in.Currency, &due,
		&in.PaidAt, &in.Cancelled, &in.Version, &in.CreatedAt, &in.UpdatedAt); err != nil {
		return nil, err
	}
	in.DueOn = cloud.DateOf(due)
	return &in, nil
}

// instalmentErr maps the foreign key errors of an instalment write.
func instalmentErr(err error) error {
	switch cloud.ErrorField(err) {
	case "member_id":
		return cloud.NotFound("Member")
	case "membership_id":
		return cloud.Invalid("membership_id", "Membership not found: it must be one of the member's.")
	}
	return err
}

// CreateInstalment records an amount a member owes.
func (s *MemberService) CreateInstalment(ctx context.Context, in *cloud.Instalment) error {
	return s.db.inTx(ctx, func(tx *Tx) error {
		if _, err := findMember(ctx, tx, tx.tenant(), in.MemberID, false); err != nil {
			return err
		}
		if err := in.Validate(tx.now); err != nil {
			return err
		}
		in.TenantID, in.Version, in.CreatedAt, in.UpdatedAt = tx.tenant(), 1, tx.now, tx.now
		err := tx.QueryRow(ctx, `INSERT INTO instalments (tenant_id, member_id, membership_id, description, amount_cents, currency, due_on,
			paid_at, cancelled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id`,
			in.TenantID, in.MemberID, in.MembershipID, in.Description, in.AmountCents, in.Currency, in.DueOn.Time(), in.PaidAt, in.Cancelled,
			tx.now).Scan(&in.ID)
		if err != nil {
			return instalmentErr(mapErr(fmt.Errorf("insert instalment: %w", err)))
		}
		return tx.audit(ctx, "instalment.create", "instalment", in.ID, in)
	})
}

// FindInstalments lists a member's instalments by due date.
func (s *MemberService) FindInstalments(ctx context.Context, memberID int64) ([]*cloud.Instalment, error) {
	return findOfMember(ctx, s.db, memberID, "instalments", instalmentCols, "due_on, id", scanInstalment)
}

// UpdateInstalment changes an instalment: records or clears its payment,
// cancels it, or corrects it.
func (s *MemberService) UpdateInstalment(ctx context.Context, id int64, version int, upd cloud.InstalmentUpdate) (*cloud.Instalment, error) {
	var in *cloud.Instalment
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if in, err = lockVersioned(ctx, tx, "instalments", instalmentCols, id, "Instalment", version, scanInstalment); err != nil {
			return err
		}
		upd.Apply(in)
		if err := in.Validate(tx.now); err != nil {
			return err
		}
		in.Version++
		in.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE instalments SET membership_id = $3, description = $4, amount_cents = $5, currency = $6, due_on = $7,
			paid_at = $8, cancelled = $9, version = $10, updated_at = $11 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, in.MembershipID, in.Description, in.AmountCents, in.Currency, in.DueOn.Time(), in.PaidAt, in.Cancelled,
			in.Version, in.UpdatedAt); err != nil {
			return instalmentErr(mapErr(fmt.Errorf("update instalment: %w", err)))
		}
		return tx.audit(ctx, "instalment.update", "instalment", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

const bookingCols = `id, tenant_id, member_id, site_id, kind, title, starts_at, ends_at, status, version, created_at, updated_at`

func scanBooking(row pgx.Row) (*cloud.Booking, error) {
	var b cloud.Booking
	if err := row.Scan(&b.ID, &b.TenantID, &b.MemberID, &b.SiteID, &b.Kind, &b.Title, &b.StartsAt, &b.EndsAt, &b.Status, &b.Version,
		&b.CreatedAt, &b.UpdatedAt); err != nil {
		return nil, err
	}
	return &b, nil
}

// bookingErr maps the foreign key errors of a booking write.
func bookingErr(err error) error {
	switch cloud.ErrorField(err) {
	case "member_id":
		return cloud.NotFound("Member")
	case "site_id":
		return cloud.Invalid("site_id", "Site not found.")
	}
	return err
}

// CreateBooking books a member into a class or an appointment.
func (s *MemberService) CreateBooking(ctx context.Context, b *cloud.Booking) error {
	return s.db.inTx(ctx, func(tx *Tx) error {
		if _, err := findMember(ctx, tx, tx.tenant(), b.MemberID, false); err != nil {
			return err
		}
		if err := b.Validate(); err != nil {
			return err
		}
		b.TenantID, b.Version, b.CreatedAt, b.UpdatedAt = tx.tenant(), 1, tx.now, tx.now
		err := tx.QueryRow(ctx, `INSERT INTO bookings (tenant_id, member_id, site_id, kind, title, starts_at, ends_at, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id`,
			b.TenantID, b.MemberID, b.SiteID, b.Kind, b.Title, b.StartsAt, b.EndsAt, b.Status, tx.now).Scan(&b.ID)
		if err != nil {
			return bookingErr(mapErr(fmt.Errorf("insert booking: %w", err)))
		}
		return tx.audit(ctx, "booking.create", "booking", b.ID, b)
	})
}

// FindBookings lists a member's bookings by start time.
func (s *MemberService) FindBookings(ctx context.Context, f cloud.BookingFilter) ([]*cloud.Booking, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return nil, cloud.Invalid("to", "to is before from.")
	}
	if _, err := findMember(ctx, s.db.Pool, op.TenantID, f.MemberID, false); err != nil {
		return nil, err
	}
	var from, to *time.Time
	if !f.From.IsZero() {
		t := f.From.Time()
		from = &t
	}
	if !f.To.IsZero() {
		t := f.To.AddDays(1).Time()
		to = &t
	}
	// The cursor is the last booking's ID; the page goes on after its
	// (starts_at, id), read from the row itself.
	rows, err := s.db.Pool.Query(ctx, `SELECT `+bookingCols+` FROM bookings WHERE tenant_id = $1 AND member_id = $2
		AND ($3::timestamptz IS NULL OR starts_at >= $3) AND ($4::timestamptz IS NULL OR starts_at < $4)
		AND ($5 = 0 OR (starts_at, id) > (SELECT c.starts_at, c.id FROM bookings c WHERE c.tenant_id = $1 AND c.id = $5))
		ORDER BY starts_at, id LIMIT $6`, pgx.QueryExecModeExec,
		op.TenantID, f.MemberID, from, to, f.Cursor, limitOf(f.Limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find bookings: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Booking, error) { return scanBooking(r) })
}

// UpdateBooking changes a booking: its time, place or status.
func (s *MemberService) UpdateBooking(ctx context.Context, id int64, version int, upd cloud.BookingUpdate) (*cloud.Booking, error) {
	var b *cloud.Booking
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if b, err = lockVersioned(ctx, tx, "bookings", bookingCols, id, "Booking", version, scanBooking); err != nil {
			return err
		}
		upd.Apply(b)
		if err := b.Validate(); err != nil {
			return err
		}
		b.Version++
		b.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE bookings SET site_id = $3, kind = $4, title = $5, starts_at = $6, ends_at = $7, status = $8,
			version = $9, updated_at = $10 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, b.SiteID, b.Kind, b.Title, b.StartsAt, b.EndsAt, b.Status, b.Version, b.UpdatedAt); err != nil {
			return bookingErr(mapErr(fmt.Errorf("update booking: %w", err)))
		}
		return tx.audit(ctx, "booking.update", "booking", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}
