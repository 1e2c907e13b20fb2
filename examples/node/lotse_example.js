#!/usr/bin/env node
// A Lotse client in Node.js: one person from registration to a course seat.
//
// Uses @grpc/grpc-js and @grpc/proto-loader from the repository's
// package.json (`npm install` in the repository root). The stubs are built
// at start from the .proto files in proto/, so they always match the
// contracts the services run.
//
// What it does, each step as the agency that would do it in real life:
//   1. the municipality's case management (kim-koeln) registers a person,
//   2. opens a case with an integration-course step referred to the course
//      provider (vhs-koeln),
//   3. the course provider publishes a course (unless one with free seats
//      is found),
//   4. BAMF (bamf-nuernberg) links its file number and admits the person,
//   5. the case manager books a seat and reads the case view,
//   6. and two deliberate mistakes show how errors carry their details.
//
// Configuration (environment): LOTSE_TLS_DIR (dev-pki directory, default
// .dev/pki), LOTSE_IDENTITY, LOTSE_CASES, LOTSE_COURSES (host:port, default
// the ports of `tools/lotse.sh run`). Exit status 0 on success, 1 on failure.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const ROOT = path.resolve(__dirname, '..', '..');
const PROTO_DIR = path.join(ROOT, 'proto');
const TLS_DIR = process.env.LOTSE_TLS_DIR || path.join(ROOT, '.dev', 'pki');
const IDENTITY = process.env.LOTSE_IDENTITY || '127.0.0.1:50051';
const CASES = process.env.LOTSE_CASES || '127.0.0.1:50052';
const COURSES = process.env.LOTSE_COURSES || '127.0.0.1:50053';

// --- stubs from proto/ -------------------------------------------------------

// keepCase keeps the field names of the .proto files (given_names, not
// givenNames); enums arrive as their names, 64-bit integers as strings.
const definition = protoLoader.loadSync(
    [
      'lotse/identity/v1/identity_service.proto',
      'lotse/cases/v1/cases_service.proto',
      'lotse/courses/v1/courses_service.proto',
    ],
    {includeDirs: [PROTO_DIR], keepCase: true, enums: String, longs: String,
     defaults: true, oneofs: true});
const lotse = grpc.loadPackageDefinition(definition).lotse;

// The error details are decoded with protobufjs (what proto-loader itself
// is built on), from the same google/rpc files the services use.
const rpcTypes = new protobuf.Root();
rpcTypes.resolvePath = (origin, target) =>
  target.startsWith('google/protobuf/') ? target : path.join(PROTO_DIR, target);
rpcTypes.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);

// --- connecting --------------------------------------------------------------

// A mutual-TLS connection that presents the agency's client certificate.
// The server knows the calling agency only from this certificate.
function credentialsOf(agency) {
  const read = (...parts) => fs.readFileSync(path.join(TLS_DIR, ...parts));
  return grpc.credentials.createSsl(
      read('ca.crt'), read('clients', `${agency}.key`),
      read('clients', `${agency}.crt`));
}

// A client of `Service` at `target` as `agency`, whose methods return
// promises. Every call carries who in the agency acts and why (the
// x-lotse-actor and x-lotse-purpose metadata): required, and audited.
function connect(Service, target, agency, actor, purpose) {
  const client = new Service(target, credentialsOf(agency));
  const call = (method) => (request) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-lotse-actor', actor);
    metadata.set('x-lotse-purpose', purpose);
    const deadline = new Date(Date.now() + 10000);
    client[method](request, metadata, {deadline},
                   (error, response) => error ? reject(error) : resolve(response));
  });
  return new Proxy({}, {get: (_, method) => call(method)});
}

// --- errors ------------------------------------------------------------------

// The reason (ErrorInfo) and field violations (BadRequest) of a failed
// call. Lotse sends them as a google.rpc.Status in the binary trailer
// grpc-status-details-bin: the message text is for people, the details for
// programs.
function errorDetails(error) {
  const result = {reason: '', metadata: {}, violations: []};
  const [bytes] = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  if (!bytes) return result;
  const status = rpcTypes.lookupType('google.rpc.Status').decode(bytes);
  for (const any of status.details) {
    const typeName = any.type_url.split('/').pop();
    const detail = rpcTypes.lookupType(typeName).decode(any.value);
    if (typeName === 'google.rpc.ErrorInfo') {
      result.reason = detail.reason;
      result.metadata = detail.metadata;
    } else if (typeName === 'google.rpc.BadRequest') {
      result.violations = detail.fieldViolations.map((v) => [v.field, v.description]);
    }
  }
  return result;
}

// Prints a refused call the way a client should show it.
function report(what, error) {
  const {reason, violations} = errorDetails(error);
  console.log(`${what}: refused with ${grpc.status[error.code]}` +
              (reason ? `, reason ${reason}` : ''));
  for (const [field, description] of violations) {
    console.log(`  field ${field}: ${description}`);
  }
}

// --- small helpers -----------------------------------------------------------

function dateInDays(days) {
  const d = new Date(Date.now() + days * 86400000);
  return {year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate()};
}

// A fresh idempotency key: retrying a call with the same key is safe.
const requestId = () => crypto.randomUUID();

// Runs `call`, which must fail, and reports how it failed.
async function expectRefused(what, call) {
  try {
    await call();
  } catch (error) {
    report(what, error);
    return;
  }
  throw new Error(`${what} was accepted`);
}

// --- the walk-through --------------------------------------------------------

async function main() {
  const kim = (Service, target) =>
    connect(Service, target, 'kim-koeln', 'cm-example', 'case-management');
  const identity = kim(lotse.identity.v1.IdentityService, IDENTITY);
  const cases = kim(lotse.cases.v1.CasesService, CASES);
  const courses = kim(lotse.courses.v1.CoursesService, COURSES);

  // 1. Register the person. A full birth date lets BAMF prove later, from
  // its own papers, that the person is in its remit.
  const name = {given_names: 'Tesfaye', family_names: 'Bekele', script: 'Latn',
                kind: 'NAME_KIND_CURRENT'};
  const birthDate = {year: 1989, month: 11, day: 2};
  const create = {request_id: requestId(),
                  person: {names: [name], birth_date: birthDate, birth_place: 'Gondar'}};
  let person;
  try {
    person = await identity.CreatePerson(create);
  } catch (error) {
    const {reason, metadata} = errorDetails(error);
    if (reason !== 'POSSIBLE_DUPLICATE') throw error;
    // Someone with these data is registered already (this example ran
    // before). A caseworker would compare the candidates; this made-up
    // person is confirmed as new.
    console.log('possible duplicates:', metadata.candidates);
    person = await identity.CreatePerson({...create, confirm_new_person: true});
  }
  console.log('person:', person.name);

  // 2. Open a case and refer an integration-course step to the provider.
  const opened = await cases.OpenCase({
    request_id: requestId(),
    case_record: {person: person.name, responsible_actor: 'cm-example'},
  });
  console.log('case:', opened.name);
  const step = await cases.CreateStep({
    parent: opened.name, request_id: requestId(),
    step: {kind: 'STEP_KIND_INTEGRATION_COURSE', receiving_agency: 'agencies/vhs-koeln'},
  });
  console.log('step:', step.name);

  // 3. Find an integration course in Köln with a free seat; if there is
  // none, the provider publishes one.
  const found = await courses.SearchCourses({
    kinds: ['COURSE_KIND_INTEGRATION_GENERAL'], municipality_code: '05315000',
  });
  let course;
  if (found.results.length > 0) {
    course = found.results[0].course;
  } else {
    const provider = connect(lotse.courses.v1.CoursesService, COURSES, 'vhs-koeln',
                             'planner-example', 'course-placement');
    course = await provider.CreateCourse({
      request_id: requestId(),
      course: {
        title: 'Integrationskurs Vormittag',
        kind: 'COURSE_KIND_INTEGRATION_GENERAL',
        target_level: 'CEFR_LEVEL_B1',
        place: {street: 'Cäcilienstraße', postal_code: '50667', locality: 'Köln',
                municipality_code: '05315000'},
        schedule: {start_date: dateInDays(14), weekdays: ['DAY_OF_WEEK_MONDAY'],
                   day_period: 'DAY_PERIOD_MORNING', units_per_week: 20,
                   total_units: 700},
        capacity: 12,
      },
    });
  }
  console.log('course:', course.name);

  // 4. BAMF links its file number, proving the remit with the papers' name
  // and birth data, then admits the person to integration courses.
  const bamf = (Service, target) =>
    connect(Service, target, 'bamf-nuernberg', 'bamf-example', 'course-admission');
  await bamf(lotse.identity.v1.IdentityService, IDENTITY).LinkAgencyId({
    parent: person.name, request_id: requestId(),
    agency_id: {kind: 'AGENCY_ID_KIND_BAMF_FILE_NUMBER',
                value: `BAMF-${crypto.randomBytes(4).toString('hex')}`},
    proof: {attributes: {name, birth_date: birthDate, birth_place: 'Gondar'}},
  });
  await bamf(lotse.courses.v1.CoursesService, COURSES).RecordEntitlement({
    request_id: requestId(),
    entitlement: {
      person: person.name, kind: 'ENTITLEMENT_KIND_ADMISSION',
      course_kinds: ['COURSE_KIND_INTEGRATION_GENERAL'], units: 700,
      valid_from: dateInDays(0), valid_until: dateInDays(365),
    },
  });
  console.log('admitted by BAMF');

  // 5. Book the seat for the case step, then read the case view.
  const book = {parent: course.name, request_id: requestId(),
                booking: {person: person.name, case_step: step.name}};
  const booking = await courses.CreateBooking(book);
  console.log('booking:', booking.name, booking.state);

  const view = await cases.GetCaseView({name: opened.name});
  console.log(`case view: ${view.person.given_names} ${view.person.family_names},` +
              ` born ${view.person.birth_date.year}`);
  for (const s of view.steps) console.log(`  step ${s.kind}: ${s.state}`);

  // 6. Two deliberate mistakes. A person without a name and born in the
  // future: INVALID_ARGUMENT with one field violation per bad field.
  await expectRefused('bad person', () => identity.CreatePerson({
    request_id: requestId(),
    person: {names: [{script: 'Latn'}],
             birth_date: {year: new Date().getUTCFullYear() + 1}},
  }));
  // The same person booked twice into one course: a reason to act on.
  await expectRefused('second booking',
                      () => courses.CreateBooking({...book, request_id: requestId()}));
  console.log('done');
}

main().then(() => process.exit(0), (error) => {
  if (error.code !== undefined) report('call failed', error);
  else console.error(error);
  process.exit(1);
});
