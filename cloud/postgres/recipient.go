package postgres

import (
	"context"
	"fmt"
	"time"

	"varco.dev/cloud"
)

// loadRecipients reads what messages to members ids are rendered from, in
// two queries whatever the number of members: the members, then for each
// its membership ending last, its earliest open instalment, its next booking
// (with the site's name and time zone) and its push tokens. Ids that are not
// the tenant's members are absent from the map.
func (db *DB) loadRecipients(ctx context.Context, q queryer, tenantID int64, clubName string, ids []int64, now time.Time) (map[int64]*cloud.RecipientData, error) {
	rows, err := q.Query(ctx, `SELECT `+memberCols+` FROM members WHERE tenant_id = $1 AND id = ANY($2)`, tenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	out := make(map[int64]*cloud.RecipientData, len(ids))
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("recipients: %w", err)
		}
		out[m.ID] = &cloud.RecipientData{Member: m, ClubName: clubName}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT m.id,
			ms.name, ms.starts_on, ms.ends_on,
			i.amount_cents, i.currency, i.due_on,
			b.title, b.starts_at, b.ends_at, s.name, s.timezone,
			coalesce(pt.tokens, '{}')
		FROM members m
		LEFT JOIN LATERAL (SELECT name, starts_on, ends_on FROM memberships
			WHERE tenant_id = m.tenant_id AND member_id = m.id AND NOT cancelled ORDER BY ends_on DESC, id DESC LIMIT 1) ms ON true
		LEFT JOIN LATERAL (SELECT amount_cents, currency, due_on FROM instalments
			WHERE tenant_id = m.tenant_id AND member_id = m.id AND paid_at IS NULL AND NOT cancelled ORDER BY due_on, id LIMIT 1) i ON true
		LEFT JOIN LATERAL (SELECT title, starts_at, ends_at, site_id FROM bookings
			WHERE tenant_id = m.tenant_id AND member_id = m.id AND status = 'booked' AND starts_at >= $3 ORDER BY starts_at, id LIMIT 1) b ON true
		LEFT JOIN sites s ON s.tenant_id = m.tenant_id AND s.id = b.site_id
		LEFT JOIN LATERAL (SELECT array_agg(token ORDER BY created_at DESC, token) AS tokens FROM member_push_tokens
			WHERE tenant_id = m.tenant_id AND member_id = m.id) pt ON true
		WHERE m.tenant_id = $1 AND m.id = ANY($2)`, tenantID, ids, now)
	if err != nil {
		return nil, fmt.Errorf("recipient details: %w", err)
	}
	defer rows.Close()
	zones := map[string]*time.Location{}
	for rows.Next() {
		var (
			id                       int64
			msName, cur, title, site *string
			msStart, msEnd, due      *time.Time
			cents                    *int64
			bStart, bEnd             *time.Time
			zone                     *string
			tokens                   []string
		)
		if err := rows.Scan(&id, &msName, &msStart, &msEnd, &cents, &cur, &due, &title, &bStart, &bEnd, &site, &zone, &tokens); err != nil {
			return nil, fmt.Errorf("recipient details: %w", err)
		}
		r := out[id]
		if r == nil {
			continue
		}
		if msName != nil {
			r.Membership = &cloud.Membership{Name: *msName, StartsOn: dateOf(msStart), EndsOn: dateOf(msEnd)}
		}
		if cents != nil {
			r.Instalment = &cloud.Instalment{AmountCents: *cents, Currency: *cur, DueOn: dateOf(due)}
		}
		if title != nil {
			r.Booking = &cloud.Booking{Title: *title, StartsAt: *bStart, EndsAt: *bEnd}
			r.BookingSite = *site
			loc, ok := zones[*zone]
			if !ok {
				if loc, err = time.LoadLocation(*zone); err != nil {
					loc = time.UTC // sites are validated on save; a zone gone from tzdata reads as UTC
				}
				zones[*zone] = loc
			}
			r.BookingZone = loc
		}
		r.PushTokens = tokens
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recipient details: %w", err)
	}
	return out, nil
}
