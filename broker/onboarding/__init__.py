"""Organisation onboarding: applications, verification or rejection, and invitations."""
