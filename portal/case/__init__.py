"""The case core: the stages of a case and their transitions, case events, sealing helpers,
case numbers, readers at arrival, evidence streams. Shared by the reporter side and the
workspace; imports only the kernel and crypto."""
