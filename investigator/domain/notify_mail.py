"""The texts of the notifier's mails: staff digests, the urgent notice, the reporter's news."""

from __future__ import annotations

from collections import Counter

from investigator.domain.notify_kinds import KINDS, URGENT
from portal.kernel.mailer import Mail

# mail texts: Chinese first, then English; counts only
SUBJECT = "工作台通知 / Workspace notifications"


URGENT_SUBJECT = "紧急：值班通知 / Urgent: on-duty notice"


LINES: dict[str, str] = {
    URGENT: "紧急案件待处理 / Urgent cases waiting: {n}",
    "new_cases": "新收到的举报 / New reports received: {n}",
    "assigned": "您被加入调查小组 / Investigation teams you were added to: {n}",
    "reporter_message": "举报人新消息 / New messages from reporters: {n}",
    "deadline": "期限提醒与督办 / Deadline warnings and overdue notices: {n}",
    "approval": "待您审批 / Approvals waiting for you: {n}",
    "identity_request": "身份查看申请待决定 / Identity requests waiting: {n}",
    "rights_request": "举报人撤回申请待决定 / Reporters' withdrawal requests waiting: {n}",
}


FOOTER = (
    "请登录工作台查看。本邮件不含任何案件内容。\n"
    "Sign in to the workspace to see them. This mail carries no case details.\n"
    "(通知设置 / notification settings: /workspace/notifications)"
)


REPORTER_SUBJECT = "您的举报有新进展 / There is news about your report"


REPORTER_BODY = (
    "您的举报有新进展。请用您的查询码登录举报平台查看。\n"
    "There is news about your report. Sign in to the portal with your receipt code to read it.\n\n"
    "本邮件不含任何案件内容，也不会包含您的查询码。\n"
    "This mail carries no case details and never your receipt code."
)


def staff_mail(address: str, counts: Counter[str]) -> Mail:
    order = [URGENT, *KINDS]
    lines = [LINES[k].format(n=counts[k]) for k in order if counts[k]]
    subject = URGENT_SUBJECT if counts[URGENT] else SUBJECT
    return Mail(to=address, subject=subject, body="\n".join(lines) + "\n\n" + FOOTER + "\n")
