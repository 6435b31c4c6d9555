"""Write the demo handbook (PDF) and travel policy (DOCX) from the text below.

Run once after changing the text, and commit the outputs:

    .venv/bin/python documents/demo_files/build_demo_files.py

The output is the same on every run (no timestamps), so git only sees real changes.
"""

import datetime
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from documents.pdfmake import make_pdf, wrap  # noqa: E402

HANDBOOK = [
    (
        "Welcome to Brightwater",
        """Brightwater Analytics helps water utilities find leaks and plan repairs from sensor data. We are 140 people in two offices, Amsterdam and Lisbon, and about a third of us work mostly from home.

This handbook describes how we work together: working hours, time off, remote work, expenses and the rules we all follow. It applies to every employee on a Brightwater contract. Where your contract or local law gives you more, that wins.

Questions about this handbook go to People & Culture at hr@brightwater.example or extension 2100. The handbook is reviewed every January; this is the 2026 edition.""",
    ),
    (
        "Working hours",
        """A full-time week is 38 hours. Core hours are 10:00 to 16:00 (CET) on working days: be reachable for meetings then. Outside core hours, plan your day as suits you and your team.

Overtime is the exception. When your manager asks you to work more than 40 hours in a week, the extra hours are added to your time-off balance, one for one. Record them in Harbor, our HR portal, within the same month.

Meetings are not scheduled on Friday afternoons, and nobody is expected to answer messages between 19:00 and 08:00 or at weekends unless they are on call.""",
    ),
    (
        "Vacation and public holidays",
        """Full-time employees get 27 vacation days a year, plus the public holidays of the country they work in. Part-time employees get the same in proportion to their hours. You earn one extra vacation day for every five years with Brightwater, up to 30 days in all.

Request vacation in Harbor at least two weeks ahead for one week or less, and four weeks ahead for longer. Your manager answers within three working days. Try to take at least two consecutive weeks off once a year.

Unused vacation days carry over to the next year, up to 5 days; carried-over days must be used by 31 March, after which they expire. Days you could not take because of illness or parental leave do not expire.

The offices close between Christmas and New Year. Those days (normally three) are taken from your vacation balance automatically.""",
    ),
    (
        "Sick leave",
        """If you are ill, tell your manager before 10:00 on the first day, by phone or chat, and register it in Harbor. You do not need to say what is wrong. A doctor's note is needed from the fourth day in a row.

You keep your full salary for the first 52 weeks of illness. During a longer illness, the company doctor helps you and your manager plan your return.""",
    ),
    (
        "Parental leave",
        """Birth parents get 16 weeks of paid leave. Partners get 6 weeks of paid leave, to be taken within the first six months. Adoptive and foster parents get the same as partners. Brightwater tops up any statutory parental leave pay to your full salary for these weeks.

Tell your manager and People & Culture at least three months before you plan to start your leave.""",
    ),
    (
        "Remote work",
        """You may work from home up to three days a week; teams agree on shared office days. Working from another country is allowed for up to 20 working days a year, in countries of the European Union only, after approval in Harbor.

Every employee gets a one-time home office stipend of 500 euros for a desk, chair or screen (see the expense rules), and an internet allowance of 25 euros a month with their salary.

At home, lock your screen when you step away and never let others use your company laptop.""",
    ),
    (
        "Expenses",
        """Brightwater pays back reasonable costs of doing your job. Submit expenses in Ledgerly within 30 days, with a photo of each receipt. Claims older than 90 days are not paid. Reimbursements are paid with the next salary.

Daily limits while travelling: meals up to 60 euros a day; taxis up to 50 euros a trip. A client dinner may cost up to 85 euros a person and needs your manager's approval. Alcohol is never reimbursed. The full list of limits is in the Expense limits table, and travel rules are in the Travel policy.

Company credit cards are issued to people who travel more than six times a year. Ask your manager.""",
    ),
    (
        "Equipment and security",
        """You get a laptop (MacBook Pro or ThinkPad), a headset and a phone if your role needs one. Laptops are replaced every four years. All laptops are encrypted and managed by IT; do not disable the security software.

Use your Brightwater ID with multi-factor authentication for every company system. Passwords are at least 14 characters. Report anything suspicious, a lost device or a phishing email to the IT helpdesk on extension 4357 at once. The IT FAQ explains the VPN and Wi-Fi.

Customer data never leaves company systems: no personal email, no USB sticks, no personal cloud storage.""",
    ),
    (
        "Learning and development",
        """Everyone has a training budget of 1,200 euros a year for courses, conferences and books, and five learning days a year. Agree how you use them with your manager. Unused budget does not carry over.

Internal talks take place every second Thursday at 16:00 and are recorded.""",
    ),
    (
        "Code of conduct and contacts",
        """Treat colleagues, customers and partners with respect. Harassment and discrimination are not tolerated. If something is wrong, talk to your manager, People & Culture, or the confidential adviser (confidential@brightwater.example), who will not share what you say without your consent.

Gifts from suppliers or customers worth more than 50 euros must be reported to Finance.

Contacts: People & Culture, hr@brightwater.example, extension 2100. IT helpdesk, extension 4357. Facilities, facilities-ams@brightwater.example. Travel desk, travel@brightwater.example.""",
    ),
]

TRAVEL_POLICY = [
    (
        "Purpose and scope",
        [
            "This policy covers business travel by Brightwater employees: booking, transport, hotels, daily costs and safety. It applies from 1 January 2026.",
            "Travel only when meeting in person makes a real difference. A video call is the default for internal meetings.",
        ],
    ),
    (
        "Approval",
        [
            "Every trip needs your manager's approval in Harbor before you book. Trips costing more than 1,500 euros in total, and all trips outside Europe, also need the approval of your department head.",
            "Approve first, then book: the travel desk cannot book unapproved trips.",
        ],
    ),
    (
        "Booking",
        [
            "Book flights, trains and hotels through the travel desk (travel@brightwater.example or the Travel tab in Harbor) at least 14 days before departure. Later bookings are allowed when the trip could not be planned earlier; say why in the request.",
            "Do not book through personal accounts or collect personal loyalty points in a way that changes your choice of airline or hotel.",
        ],
    ),
    (
        "Transport",
        [
            "Take the train when the journey takes less than 4 hours door to door (for example Amsterdam to Brussels, Paris or Cologne). Trains are booked in second class, first class for journeys over 3 hours.",
            "Flights are booked in economy class. For flights longer than 6 hours, premium economy is allowed. Business class is never booked.",
            "Own car: 0.30 euros per kilometre, when it is cheaper than the train. Rental cars need the travel desk's approval; choose the smallest suitable car.",
        ],
    ),
    (
        "Hotels",
        [
            "Hotels may cost up to 180 euros a night in capital cities and 140 euros a night elsewhere, breakfast included. The travel desk knows hotels near our customers that stay within these limits.",
            "Staying with friends instead of a hotel is fine; Brightwater then pays a 40 euro a night allowance.",
        ],
    ),
    (
        "Daily costs",
        [
            "Meals are reimbursed up to 60 euros a day, on receipts, through Ledgerly. Local transport, such as metro tickets and taxis up to 50 euros a trip, is reimbursed on receipts.",
            "Internet in the hotel, laundry for trips longer than five days and visa costs are reimbursed. Minibar, films and fines are not.",
        ],
    ),
    (
        "Safety and insurance",
        [
            "All employees are covered by the company travel insurance for business trips (policy number BW-2026-TRAVEL). In an emergency, call the 24-hour assistance line +31 20 555 9111.",
            "Check the travel advice of the Dutch or Portuguese government before you leave. Trips to countries with a negative travel advice are not allowed.",
        ],
    ),
]

HOTEL_LIMITS = [
    ("City", "Hotel limit per night", "Preferred hotel"),
    ("Amsterdam", "180 euros", "Hotel Jansz (near the office)"),
    ("Lisbon", "180 euros", "Hotel Baixa Prata"),
    ("London", "180 euros", "Travel desk rate"),
    ("Rotterdam", "140 euros", "Hotel Maas"),
    ("Porto", "140 euros", "Travel desk rate"),
]


def handbook_pdf():
    pages = []
    for number, (heading, text) in enumerate(HANDBOOK, 1):
        lines = [f"# {heading}", ""]
        for paragraph in text.split("\n\n"):
            lines += wrap(paragraph, 88) + [""]
        lines += ["", f"Brightwater employee handbook 2026 - page {number}"]
        pages.append(lines)
    return make_pdf(pages, title="Brightwater employee handbook 2026")


def travel_docx():
    import docx

    document = docx.Document()
    props = document.core_properties
    props.author = "Brightwater People & Culture"
    props.title = "Travel policy"
    props.created = props.modified = datetime.datetime(2026, 1, 1)
    props.last_modified_by = "Brightwater People & Culture"
    props.revision = 1
    document.add_heading("Brightwater travel policy", level=0)
    for heading, paragraphs in TRAVEL_POLICY:
        document.add_heading(heading, level=1)
        for text in paragraphs:
            document.add_paragraph(text)
        if heading == "Hotels":
            table = document.add_table(rows=len(HOTEL_LIMITS), cols=3)
            table.style = "Table Grid"
            for row, values in zip(table.rows, HOTEL_LIMITS, strict=True):
                for cell, value in zip(row.cells, values, strict=True):
                    cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return _deterministic_zip(buffer.getvalue())


def _deterministic_zip(data):
    """Rewrite the zip with fixed timestamps so the file is identical on every run."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def main():
    (HERE / "employee-handbook.pdf").write_bytes(handbook_pdf())
    (HERE / "travel-policy.docx").write_bytes(travel_docx())
    print("wrote employee-handbook.pdf and travel-policy.docx")


if __name__ == "__main__":
    main()
