package http

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes registers every route. The OpenAPI document (openapi.json) lists
// the same set; TestRoutesMatchOpenAPI keeps them in step.
func (s *Server) routes() {
	r := s.router
	r.Use(s.observe)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: errorDetail{Code: "not_found", Message: "No such route."}})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: "method_not_allowed", Message: "Method not allowed on this route."}})
	})
	r.Get("/healthz", s.handleHealthz)
	r.Method(http.MethodGet, "/metrics", s.metricsHandler())

	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/openapi.json", s.handleOpenAPI)
		r.Post("/auth/login", s.handleLogin)
		r.Post("/unsubscribe/{token}", s.handleUnsubscribe)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.Post("/auth/logout", s.handleLogout)
			r.Get("/me", s.handleMe)
			r.Post("/tokens", s.handleCreateToken)

			r.Get("/operators", s.handleListOperators)
			r.Post("/operators", s.handleCreateOperator)
			r.Get("/operators/{id}", s.handleGetOperator)
			r.Patch("/operators/{id}", s.handleUpdateOperator)

			r.Get("/sites", s.handleListSites)
			r.Post("/sites", s.handleCreateSite)
			r.Get("/sites/{id}", s.handleGetSite)
			r.Patch("/sites/{id}", s.handleUpdateSite)
			r.Get("/gates", s.handleListGates)
			r.Post("/gates", s.handleCreateGate)
			r.Get("/gates/{id}", s.handleGetGate)
			r.Patch("/gates/{id}", s.handleUpdateGate)

			r.Get("/edges", s.handleListEdges)
			r.Post("/edges", s.handleCreateEdge)
			r.Get("/edges/{id}", s.handleGetEdge)
			r.Patch("/edges/{id}", s.handleUpdateEdge)
			r.Delete("/edges/{id}", s.handleDeleteEdge)
			r.Post("/edges/{id}/password", s.handleRotateEdgePassword)
			r.Get("/edges/{id}/config", s.handleEdgeConfig)
			r.Get("/edges/{id}/commands", s.handleListCommands)
			r.Post("/edges/{id}/commands", s.handleSendCommand)
			r.Get("/passages", s.handleListPassages)

			r.Get("/members", s.handleListMembers)
			r.Post("/members", s.handleCreateMember)
			r.Get("/members/export", s.handleExportMembers)
			r.Post("/members/import", s.handleImportMembers)
			r.Get("/members/{id}", s.handleGetMember)
			r.Patch("/members/{id}", s.handleUpdateMember)
			r.Post("/members/{id}/archive", s.handleArchiveMember)
			r.Get("/members/{id}/credentials", s.handleListCredentials)
			r.Post("/members/{id}/credentials", s.handleCreateCredential)
			r.Get("/members/{id}/memberships", s.handleListMemberships)
			r.Post("/members/{id}/memberships", s.handleCreateMembership)
			r.Get("/members/{id}/actions", s.handleMemberActions)
			r.Get("/members/{id}/access", s.handleMemberAccess)
			r.Get("/members/{id}/passages", s.handleMemberPassages)
			r.Post("/members/{id}/overrides", s.handleCreateOverride)
			r.Get("/members/{id}/instalments", s.handleListInstalments)
			r.Post("/members/{id}/instalments", s.handleCreateInstalment)
			r.Get("/members/{id}/bookings", s.handleListBookings)
			r.Post("/members/{id}/bookings", s.handleCreateBooking)
			r.Get("/members/{id}/messages", s.handleMemberMessages)
			r.Post("/members/{id}/push-tokens", s.handleRegisterPushToken)
			r.Patch("/credentials/{id}", s.handleUpdateCredential)
			r.Patch("/memberships/{id}", s.handleUpdateMembership)
			r.Patch("/instalments/{id}", s.handleUpdateInstalment)
			r.Patch("/bookings/{id}", s.handleUpdateBooking)

			r.Get("/imports", s.handleListImports)
			r.Get("/imports/{id}", s.handleGetImport)
			r.Get("/imports/{id}/errors", s.handleImportErrors)

			r.Get("/crm/config", s.handleCRMConfig)
			r.Post("/crm/action-types", s.handleCreateActionType)
			r.Patch("/crm/action-types/{id}", s.handleUpdateActionType)
			r.Post("/crm/outcomes", s.handleCreateOutcome)
			r.Patch("/crm/outcomes/{id}", s.handleUpdateOutcome)
			r.Post("/crm/commercial-statuses", s.handleCreateStatus)
			r.Put("/crm/relations", s.handlePutRelation)
			r.Post("/crm/replace", s.handleReplace)

			r.Get("/actions", s.handleListActions)
			r.Post("/actions", s.handleCreateAction)
			r.Post("/actions/bulk", s.handleBulkActions)
			r.Get("/actions/{id}", s.handleGetAction)
			r.Patch("/actions/{id}", s.handleUpdateAction)
			r.Post("/actions/{id}/advance", s.handleAdvanceAction)
			r.Post("/actions/{id}/copy", s.handleCopyAction)
			r.Get("/agenda", s.handleAgenda)
			r.Get("/leaderboard", s.handleLeaderboard)
			r.Post("/what-if", s.handleWhatIf)

			r.Get("/templates", s.handleListTemplates)
			r.Post("/templates", s.handleCreateTemplate)
			r.Get("/templates/placeholders", s.handlePlaceholders)
			r.Get("/templates/{id}", s.handleGetTemplate)
			r.Patch("/templates/{id}", s.handleUpdateTemplate)
			r.Post("/templates/{id}/archive", s.handleArchiveTemplate)

			r.Post("/communications/preview", s.handlePreviewCommunication)
			r.Post("/communications", s.handleCreateCommunication)
			r.Post("/communications/crm", s.handleCreateCRMCommunication)
			r.Get("/communications", s.handleListCommunications)
			r.Get("/communications/{id}", s.handleGetCommunication)
			r.Get("/communications/{id}/messages", s.handleCommunicationMessages)
			r.Get("/targets", s.handleListTargets)
			r.Post("/targets", s.handleCreateTarget)
			r.Post("/targets/preview", s.handlePreviewTarget)
			r.Get("/targets/{id}", s.handleGetTarget)
			r.Patch("/targets/{id}", s.handleUpdateTarget)
			r.Post("/targets/{id}/archive", s.handleArchiveTarget)
			r.Post("/targets/{id}/run", s.handleRunTarget)
			r.Post("/targets/{id}/count", s.handleCountTarget)
			r.Get("/targets/{id}/export.csv", s.handleExportTargetCSV)
			r.Get("/targets/{id}/export.xlsx", s.handleExportTargetXLSX)
			r.Post("/targets/{id}/actions", s.handleTargetActions)

			r.Get("/schedules", s.handleListSchedules)
			r.Post("/schedules", s.handleCreateSchedule)
			r.Get("/schedules/{id}", s.handleGetSchedule)
			r.Patch("/schedules/{id}", s.handleUpdateSchedule)
			r.Get("/schedules/{id}/runs", s.handleScheduleRuns)

			r.Get("/audit", s.handleAudit)

			r.Get("/sync/offline-policy", s.handleGetOfflinePolicy)
			r.Put("/sync/offline-policy", s.handlePutOfflinePolicy)
			r.Get("/sync/keys", s.handleListSigningKeys)
			r.Post("/sync/keys", s.handleAddSigningKey)
			r.Post("/sync/keys/{generation}/activate", s.handleActivateSigningKey)
			r.Post("/sync/keys/{generation}/retire", s.handleRetireSigningKey)
		})
	})
}
