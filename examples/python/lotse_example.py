#!/usr/bin/python3
"""A Lotse client in Python: one person from registration to a course seat.

Run it with Debian's python3-grpcio and python3-grpc-tools (see
examples/README.md). It generates its gRPC stubs from the repository's
proto/ directory into a temporary directory at start, so the stubs always
match the contracts it runs against.

What it does, each step as the agency that would do it in real life:
  1. the municipality's case management (kim-koeln) registers a person,
  2. opens a case for them with an integration-course step referred to the
     course provider (vhs-koeln),
  3. the course provider publishes a course (unless one with free seats is
     found),
  4. BAMF (bamf-nuernberg) links its file number and admits the person to
     integration courses,
  5. the case manager books a seat and reads the case view,
  6. and two deliberate mistakes show how errors carry their details.

Configuration (environment): LOTSE_TLS_DIR (dev-pki directory, default
.dev/pki), LOTSE_IDENTITY, LOTSE_CASES, LOTSE_COURSES (host:port, default
the ports of `tools/lotse.sh run`). Exit status 0 on success, 1 on failure.
"""

import datetime
import glob
import os
import sys
import tempfile
import uuid

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TLS_DIR = os.environ.get("LOTSE_TLS_DIR", os.path.join(ROOT, ".dev", "pki"))
IDENTITY = os.environ.get("LOTSE_IDENTITY", "127.0.0.1:50051")
CASES = os.environ.get("LOTSE_CASES", "127.0.0.1:50052")
COURSES = os.environ.get("LOTSE_COURSES", "127.0.0.1:50053")


def generate_stubs(out_dir):
    """Compiles proto/ into Python modules under out_dir and imports from there."""
    proto_dir = os.path.join(ROOT, "proto")
    protos = sorted(
        os.path.relpath(p, proto_dir)
        for pattern in ("lotse/*/v1/*.proto", "google/rpc/*.proto")
        for p in glob.glob(os.path.join(proto_dir, pattern)))
    # google/protobuf/*.proto (timestamps, field masks) ship with grpc_tools.
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", "-I" + proto_dir, "-I" + well_known,
            "--python_out=" + out_dir, "--grpc_python_out=" + out_dir] + protos
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out_dir)


STUB_DIR = tempfile.TemporaryDirectory(prefix="lotse-python-stubs-")
generate_stubs(STUB_DIR.name)

# These modules exist only now that generate_stubs has run.
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from lotse.cases.v1 import cases_service_pb2 as cases_pb, cases_service_pb2_grpc  # noqa: E402
from lotse.cases.v1 import step_pb2  # noqa: E402
from lotse.courses.v1 import courses_service_pb2 as courses_pb, courses_service_pb2_grpc  # noqa: E402
from lotse.courses.v1 import booking_pb2, course_pb2, entitlement_pb2  # noqa: E402
from lotse.identity.v1 import identity_service_pb2 as identity_pb, identity_service_pb2_grpc  # noqa: E402
from lotse.identity.v1 import person_pb2  # noqa: E402
from lotse.type.v1 import date_pb2, language_pb2, schedule_pb2  # noqa: E402


# --- connecting ------------------------------------------------------------

def channel(target, agency):
    """A mutual-TLS channel that presents the agency's client certificate.

    The server knows the calling agency only from this certificate; nothing
    the client sends in a request can claim to be another agency.
    """
    def read(*parts):
        with open(os.path.join(TLS_DIR, *parts), "rb") as f:
            return f.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca.crt"),
        private_key=read("clients", agency + ".key"),
        certificate_chain=read("clients", agency + ".crt"))
    return grpc.secure_channel(target, credentials)


def call_metadata(actor, purpose):
    """Who in the agency acts, and why: required on every call and audited."""
    return (("x-lotse-actor", actor), ("x-lotse-purpose", purpose))


# --- errors ------------------------------------------------------------------

def error_details(error):
    """The reason (ErrorInfo) and field violations (BadRequest) of a failed call.

    Lotse sends them as a google.rpc.Status in the binary trailer
    grpc-status-details-bin; the message text is for people, the details
    are for programs.
    """
    reason, metadata, violations = "", {}, []
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [(v.field, v.description) for v in bad.field_violations]
    return reason, metadata, violations


def report(what, error):
    """Prints a refused call the way a client should show it."""
    reason, _, violations = error_details(error)
    print(f"{what}: refused with {error.code().name}"
          + (f", reason {reason}" if reason else ""))
    for field, description in violations:
        print(f"  field {field}: {description}")


# --- small helpers -----------------------------------------------------------

def date_in_days(days):
    d = datetime.date.today() + datetime.timedelta(days=days)
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def request_id():
    """A fresh idempotency key: retrying a call with the same key is safe."""
    return uuid.uuid4().hex


# --- the walk-through --------------------------------------------------------

def main():
    kim = call_metadata("cm-example", "case-management")
    identity = identity_service_pb2_grpc.IdentityServiceStub(channel(IDENTITY, "kim-koeln"))
    cases = cases_service_pb2_grpc.CasesServiceStub(channel(CASES, "kim-koeln"))
    courses = courses_service_pb2_grpc.CoursesServiceStub(channel(COURSES, "kim-koeln"))

    # 1. Register the person. A full birth date lets BAMF prove later, from
    # its own papers, that the person is in its remit.
    name = person_pb2.PersonName(given_names="Amina", family_names="Haddad",
                                 script="Latn", kind=person_pb2.NAME_KIND_CURRENT)
    new_person = person_pb2.Person(names=[name], birth_place="Aleppo")
    new_person.birth_date.year, new_person.birth_date.month, new_person.birth_date.day = 1991, 3, 8
    create = identity_pb.CreatePersonRequest(request_id=request_id(), person=new_person)
    try:
        person = identity.CreatePerson(create, metadata=kim, timeout=10)
    except grpc.RpcError as error:
        reason, metadata, _ = error_details(error)
        if reason != "POSSIBLE_DUPLICATE":
            raise
        # Someone with these data is registered already (this example ran
        # before). A caseworker would compare the candidates; this made-up
        # person is confirmed as new.
        print("possible duplicates:", metadata.get("candidates", ""))
        create.confirm_new_person = True
        person = identity.CreatePerson(create, metadata=kim, timeout=10)
    print("person:", person.name)

    # 2. Open a case and refer an integration-course step to the provider.
    opened = cases.OpenCase(cases_pb.OpenCaseRequest(
        request_id=request_id(),
        case_record={"person": person.name, "responsible_actor": "cm-example"}),
        metadata=kim, timeout=10)
    print("case:", opened.name)
    step = cases.CreateStep(cases_pb.CreateStepRequest(
        parent=opened.name, request_id=request_id(),
        step={"kind": step_pb2.STEP_KIND_INTEGRATION_COURSE,
              "receiving_agency": "agencies/vhs-koeln"}),
        metadata=kim, timeout=10)
    print("step:", step.name)

    # 3. Find an integration course in Köln with a free seat; if there is
    # none, the provider publishes one.
    found = courses.SearchCourses(courses_pb.SearchCoursesRequest(
        kinds=[course_pb2.COURSE_KIND_INTEGRATION_GENERAL], municipality_code="05315000"),
        metadata=kim, timeout=10)
    if found.results:
        course = found.results[0].course
    else:
        provider = courses_service_pb2_grpc.CoursesServiceStub(channel(COURSES, "vhs-koeln"))
        course = provider.CreateCourse(courses_pb.CreateCourseRequest(
            request_id=request_id(),
            course=course_pb2.Course(
                title="Integrationskurs Vormittag",
                kind=course_pb2.COURSE_KIND_INTEGRATION_GENERAL,
                target_level=language_pb2.CEFR_LEVEL_B1,
                place={"street": "Cäcilienstraße", "postal_code": "50667",
                       "locality": "Köln", "municipality_code": "05315000"},
                schedule=course_pb2.CourseSchedule(
                    start_date=date_in_days(14), weekdays=[schedule_pb2.DAY_OF_WEEK_MONDAY],
                    day_period=schedule_pb2.DAY_PERIOD_MORNING,
                    units_per_week=20, total_units=700),
                capacity=12)),
            metadata=call_metadata("planner-example", "course-placement"), timeout=10)
    print("course:", course.name)

    # 4. BAMF links its file number, proving the remit with the papers'
    # name and birth data, then admits the person to integration courses.
    bamf_metadata = call_metadata("bamf-example", "course-admission")
    bamf_identity = identity_service_pb2_grpc.IdentityServiceStub(channel(IDENTITY, "bamf-nuernberg"))
    proof = person_pb2.RemitProof(attributes={
        "name": name, "birth_date": new_person.birth_date, "birth_place": "Aleppo"})
    bamf_identity.LinkAgencyId(identity_pb.LinkAgencyIdRequest(
        parent=person.name, request_id=request_id(),
        agency_id={"kind": person_pb2.AGENCY_ID_KIND_BAMF_FILE_NUMBER,
                   "value": "BAMF-" + uuid.uuid4().hex[:8]},
        proof=proof), metadata=bamf_metadata, timeout=10)
    bamf_courses = courses_service_pb2_grpc.CoursesServiceStub(channel(COURSES, "bamf-nuernberg"))
    bamf_courses.RecordEntitlement(courses_pb.RecordEntitlementRequest(
        request_id=request_id(),
        entitlement=entitlement_pb2.Entitlement(
            person=person.name, kind=entitlement_pb2.ENTITLEMENT_KIND_ADMISSION,
            course_kinds=[course_pb2.COURSE_KIND_INTEGRATION_GENERAL], units=700,
            valid_from=date_in_days(0), valid_until=date_in_days(365))),
        metadata=bamf_metadata, timeout=10)
    print("admitted by BAMF")

    # 5. Book the seat for the case step, then read the case view.
    book = courses_pb.CreateBookingRequest(
        parent=course.name, request_id=request_id(),
        booking={"person": person.name, "case_step": step.name})
    booking = courses.CreateBooking(book, metadata=kim, timeout=10)
    print("booking:", booking.name, booking_pb2.BookingState.Name(booking.state))

    view = cases.GetCaseView(cases_pb.GetCaseViewRequest(name=opened.name),
                             metadata=kim, timeout=10)
    print(f"case view: {view.person.given_names} {view.person.family_names},"
          f" born {view.person.birth_date.year}")
    for s in view.steps:
        print(f"  step {step_pb2.StepKind.Name(s.kind)}: {step_pb2.StepState.Name(s.state)}")

    # 6. Two deliberate mistakes. A person without a name and born in the
    # future: INVALID_ARGUMENT with one field violation per bad field.
    try:
        bad = person_pb2.Person(names=[person_pb2.PersonName(script="Latn")])
        bad.birth_date.year = datetime.date.today().year + 1
        identity.CreatePerson(identity_pb.CreatePersonRequest(request_id=request_id(), person=bad),
                              metadata=kim, timeout=10)
        sys.exit("the bad request was accepted")
    except grpc.RpcError as error:
        report("bad person", error)
    # The same person booked twice into one course: a reason to act on.
    try:
        book.request_id = request_id()
        courses.CreateBooking(book, metadata=kim, timeout=10)
        sys.exit("the second booking was accepted")
    except grpc.RpcError as error:
        report("second booking", error)
    print("done")


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as error:
        report("call failed", error)
        sys.exit(1)
