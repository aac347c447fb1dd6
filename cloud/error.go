package cloud

import (
	"errors"
	"fmt"
)

// Application error codes. The HTTP layer maps each code to a status.
const (
	ECONFLICT     = "conflict"            // a unique value is taken, or the state forbids the change
	EINTERNAL     = "internal"            // a bug or an unavailable dependency
	EINVALID      = "invalid"             // the input fails validation
	ENOTFOUND     = "not_found"           // the entity does not exist in the caller's tenant
	EUNAUTHORIZED = "unauthorized"        // no or bad credentials
	EFORBIDDEN    = "forbidden"           // authenticated, but the role does not allow it
	EPRECONDITION = "precondition_failed" // the version given does not match the stored one
	EPRECONDREQ   = "precondition_required"
	ETOOLARGE     = "too_large"
)

// Error is the one error type of the domain. Code is meant for machines,
// Message for people; Field names the input field at fault, when there is one.
type Error struct {
	Code    string
	Field   string
	Message string
}

// Error implements the error interface. It is not shown to end users.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("varco error: code=%s field=%s message=%s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("varco error: code=%s message=%s", e.Code, e.Message)
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of an *Error, or a generic text for any
// other error so that internals never leak to clients.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorField returns the field of an *Error in err's chain, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error for field with the given reason.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns an ENOTFOUND error for the named kind of entity.
func NotFound(kind string) *Error {
	return &Error{Code: ENOTFOUND, Message: kind + " not found."}
}
