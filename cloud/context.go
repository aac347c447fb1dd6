package cloud

import "context"

type contextKey int

const operatorContextKey contextKey = iota + 1

// NewContextWithOperator returns a copy of ctx carrying the authenticated
// operator. Services read the tenant from it.
func NewContextWithOperator(ctx context.Context, op *Operator) context.Context {
	return context.WithValue(ctx, operatorContextKey, op)
}

// OperatorFromContext returns the operator set by NewContextWithOperator, or nil.
func OperatorFromContext(ctx context.Context) *Operator {
	op, _ := ctx.Value(operatorContextKey).(*Operator)
	return op
}

// Actor returns the operator in ctx, or EUNAUTHORIZED when there is none.
func Actor(ctx context.Context) (*Operator, error) {
	op := OperatorFromContext(ctx)
	if op == nil || op.TenantID <= 0 {
		return nil, Errorf(EUNAUTHORIZED, "Authentication required.")
	}
	return op, nil
}

// RequireRole returns the operator in ctx when its role is one of roles, and
// EFORBIDDEN otherwise.
func RequireRole(ctx context.Context, roles ...Role) (*Operator, error) {
	op, err := Actor(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		if op.Role == r {
			return op, nil
		}
	}
	return nil, Errorf(EFORBIDDEN, "Your role (%s) may not do this.", op.Role)
}
