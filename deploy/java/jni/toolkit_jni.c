/*
 * JNI bridge from toolkit.deploy.Predictor to OpenVINO's C API (headers and
 * libopenvino_c from the openvino pip wheel; see build.sh). It only loads,
 * describes and runs a graph: metadata, checks and preprocessing are in Java.
 * Every OpenVINO failure becomes a toolkit.deploy.ModelException.
 */
#include <jni.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openvino/c/openvino.h>

typedef struct {
  ov_core_t* core;
  ov_model_t* model;
  ov_compiled_model_t* compiled;
  ov_infer_request_t* request;
} Handle;

/*
 * OpenVINO's frontends write to fd 2 themselves while reading a graph (absl log lines of the
 * TensorFlow frontend, for one): quiet_begin sends fd 2 to a temporary file, quiet_end restores it
 * and keeps what was written, on one line, for the error message (the runner prints ONE line).
 */
typedef struct {
  FILE* tmp;
  int saved;
  char said[512];
} Quiet;

static void quiet_begin(Quiet* q) {
  q->said[0] = '\0';
  q->saved = -1;
  q->tmp = tmpfile();
  if (!q->tmp) return;
  fflush(stderr);
  q->saved = dup(2);
  if (q->saved < 0 || dup2(fileno(q->tmp), 2) < 0) {
    if (q->saved >= 0) close(q->saved);
    q->saved = -1;
    fclose(q->tmp);
    q->tmp = NULL;
  }
}

static void quiet_end(Quiet* q) {
  if (!q->tmp) return;
  fflush(stderr);
  dup2(q->saved, 2);
  close(q->saved);
  rewind(q->tmp);
  size_t n = fread(q->said, 1, sizeof q->said - 1, q->tmp);
  q->said[n] = '\0';
  fclose(q->tmp);
  q->tmp = NULL;
  for (char* c = q->said; *c; ++c)
    if (*c == '\n' || *c == '\r') *c = ' ';
}

static void throw_model_error_said(JNIEnv* env, const char* what, ov_status_e status, const char* said) {
  char message[2048];
  const char* detail = ov_get_last_err_msg();
  snprintf(message, sizeof message, "%s: %s%s%s%s%s%s", what, ov_get_error_info(status),
           detail && *detail ? ": " : "", detail ? detail : "", said && *said ? " (" : "", said ? said : "",
           said && *said ? ")" : "");
  jclass cls = (*env)->FindClass(env, "toolkit/deploy/ModelException");
  if (cls) (*env)->ThrowNew(env, cls, message);
}

static void throw_model_error(JNIEnv* env, const char* what, ov_status_e status) {
  throw_model_error_said(env, what, status, NULL);
}

static void free_handle(Handle* h) {
  if (!h) return;
  if (h->request) ov_infer_request_free(h->request);
  if (h->compiled) ov_compiled_model_free(h->compiled);
  if (h->model) ov_model_free(h->model);
  if (h->core) ov_core_free(h->core);
  free(h);
}

JNIEXPORT jlong JNICALL Java_toolkit_deploy_Predictor_nativeLoad(JNIEnv* env, jclass cls, jstring jpath, jint threads) {
  (void)cls;
  Handle* h = calloc(1, sizeof(Handle));
  if (!h) return 0;
  const char* path = (*env)->GetStringUTFChars(env, jpath, NULL);
  ov_status_e st = ov_core_create(&h->core);
  if (st != OK) {
    throw_model_error(env, "OpenVINO core", st);
    goto fail;
  }
  Quiet quiet;
  quiet_begin(&quiet);
  st = ov_core_read_model(h->core, path, NULL, &h->model);
  quiet_end(&quiet);
  if (st != OK) {
    char what[600];
    snprintf(what, sizeof what, "OpenVINO cannot read %s", path);
    throw_model_error_said(env, what, st, quiet.said);
    goto fail;
  }
  /* f32 inference precision: on CPUs with bf16 OpenVINO would otherwise drop to bf16. */
  if (threads > 0) {
    char nthreads[16];
    snprintf(nthreads, sizeof nthreads, "%d", (int)threads);
    st = ov_core_compile_model(h->core, h->model, "CPU", 4, &h->compiled, ov_property_key_hint_inference_precision, "f32",
                               ov_property_key_inference_num_threads, nthreads);
  } else {
    st = ov_core_compile_model(h->core, h->model, "CPU", 2, &h->compiled, ov_property_key_hint_inference_precision, "f32");
  }
  if (st != OK) {
    throw_model_error(env, "OpenVINO cannot compile the graph", st);
    goto fail;
  }
  st = ov_compiled_model_create_infer_request(h->compiled, &h->request);
  if (st != OK) {
    throw_model_error(env, "OpenVINO infer request", st);
    goto fail;
  }
  (*env)->ReleaseStringUTFChars(env, jpath, path);
  return (jlong)(intptr_t)h;
fail:
  (*env)->ReleaseStringUTFChars(env, jpath, path);
  free_handle(h);
  return 0;
}

JNIEXPORT void JNICALL Java_toolkit_deploy_Predictor_nativeClose(JNIEnv* env, jclass cls, jlong handle) {
  (void)env;
  (void)cls;
  free_handle((Handle*)(intptr_t)handle);
}

static ov_status_e port(Handle* h, jboolean inputs, size_t i, ov_output_const_port_t** p) {
  return inputs ? ov_model_const_input_by_index(h->model, i, p) : ov_model_const_output_by_index(h->model, i, p);
}

/* Names of the graph's inputs (or outputs). */
JNIEXPORT jobjectArray JNICALL Java_toolkit_deploy_Predictor_nativeNames(JNIEnv* env, jclass cls, jlong handle, jboolean inputs) {
  (void)cls;
  Handle* h = (Handle*)(intptr_t)handle;
  size_t n = 0;
  ov_status_e st = inputs ? ov_model_inputs_size(h->model, &n) : ov_model_outputs_size(h->model, &n);
  if (st != OK) {
    throw_model_error(env, "OpenVINO graph ports", st);
    return NULL;
  }
  jobjectArray out = (*env)->NewObjectArray(env, (jsize)n, (*env)->FindClass(env, "java/lang/String"), NULL);
  for (size_t i = 0; i < n; ++i) {
    ov_output_const_port_t* p = NULL;
    char* name = NULL;
    if ((st = port(h, inputs, i, &p)) != OK || (st = ov_port_get_any_name(p, &name)) != OK) {
      if (p) ov_output_const_port_free(p);
      throw_model_error(env, "OpenVINO port name", st);
      return NULL;
    }
    (*env)->SetObjectArrayElement(env, out, (jsize)i, (*env)->NewStringUTF(env, name));
    ov_free(name);
    ov_output_const_port_free(p);
  }
  return out;
}

/* Shape of graph input (or output) `index`: one entry per axis, -1 for a dynamic axis; null for a dynamic rank. */
JNIEXPORT jlongArray JNICALL Java_toolkit_deploy_Predictor_nativeShape(JNIEnv* env, jclass cls, jlong handle, jboolean inputs,
                                                                      jint index) {
  (void)cls;
  Handle* h = (Handle*)(intptr_t)handle;
  ov_output_const_port_t* p = NULL;
  ov_partial_shape_t shape;
  ov_status_e st = port(h, inputs, (size_t)index, &p);
  if (st == OK) st = ov_port_get_partial_shape(p, &shape);
  if (p) ov_output_const_port_free(p);
  if (st != OK) {
    throw_model_error(env, "OpenVINO port shape", st);
    return NULL;
  }
  jlongArray out = NULL;
  if (shape.rank.min == shape.rank.max && shape.rank.min >= 0) {
    jsize rank = (jsize)shape.rank.min;
    jlong dims[64];
    if (rank > 64) rank = 64;
    for (jsize d = 0; d < rank; ++d)
      dims[d] = shape.dims[d].min == shape.dims[d].max ? (jlong)shape.dims[d].min : -1;
    out = (*env)->NewLongArray(env, rank);
    (*env)->SetLongArrayRegion(env, out, 0, rank, dims);
  }
  ov_partial_shape_free(&shape);
  return out;
}

/* Element type of graph input (or output) `index`, in numpy's names ("float32", "int64", ...); "" when dynamic. */
JNIEXPORT jstring JNICALL Java_toolkit_deploy_Predictor_nativeElementType(JNIEnv* env, jclass cls, jlong handle,
                                                                          jboolean inputs, jint index) {
  (void)cls;
  Handle* h = (Handle*)(intptr_t)handle;
  ov_output_const_port_t* p = NULL;
  ov_element_type_e type = DYNAMIC;
  ov_status_e st = port(h, inputs, (size_t)index, &p);
  if (st == OK) st = ov_port_get_element_type(p, &type);
  if (p) ov_output_const_port_free(p);
  if (st != OK) {
    throw_model_error(env, "OpenVINO port element type", st);
    return NULL;
  }
  const char* name;
  char other[32];
  switch (type) {
    case F32: name = "float32"; break;
    case F16: name = "float16"; break;
    case F64: name = "float64"; break;
    case BF16: name = "bfloat16"; break;
    case I64: name = "int64"; break;
    case I32: name = "int32"; break;
    case I16: name = "int16"; break;
    case I8: name = "int8"; break;
    case U8: name = "uint8"; break;
    case BOOLEAN: name = "bool"; break;
    case DYNAMIC: name = ""; break;
    default:
      snprintf(other, sizeof other, "element type %d", (int)type);
      name = other;
  }
  return (*env)->NewStringUTF(env, name);
}

/* Copies float32 output `index` of the finished request into a new float[]; writes its rank then dims into outShape. */
static jfloatArray output_to_java(JNIEnv* env, Handle* h, size_t index, jlongArray outShape) {
  ov_tensor_t* output = NULL;
  jfloatArray result = NULL;
  ov_status_e st = ov_infer_request_get_output_tensor_by_index(h->request, index, &output);
  if (st != OK) {
    throw_model_error(env, "OpenVINO output", st);
    return NULL;
  }
  ov_shape_t oshape;
  ov_element_type_e type;
  void* out = NULL;
  st = ov_tensor_get_shape(output, &oshape);
  if (st == OK && (st = ov_tensor_get_element_type(output, &type)) == OK && (st = ov_tensor_data(output, &out)) == OK) {
    if (type != F32) {
      jclass ex = (*env)->FindClass(env, "toolkit/deploy/ModelException");
      (*env)->ThrowNew(env, ex, "the graph's output is not float32");
    } else {
      jsize n = 1;
      jlong meta[17];
      meta[0] = oshape.rank;
      for (int64_t d = 0; d < oshape.rank && d < 16; ++d) {
        n *= (jsize)oshape.dims[d];
        meta[d + 1] = oshape.dims[d];
      }
      jsize len = (*env)->GetArrayLength(env, outShape);
      (*env)->SetLongArrayRegion(env, outShape, 0, len < oshape.rank + 1 ? len : (jsize)oshape.rank + 1, meta);
      result = (*env)->NewFloatArray(env, n);
      if (result) (*env)->SetFloatArrayRegion(env, result, 0, n, (const jfloat*)out);
    }
    ov_shape_free(&oshape);
  } else {
    throw_model_error(env, "OpenVINO output", st);
  }
  ov_tensor_free(output);
  return result;
}

/* Output `index` of the last run (float32), its rank then dims written into outShape: the detectors' three outputs. */
JNIEXPORT jfloatArray JNICALL Java_toolkit_deploy_Predictor_nativeOutput(JNIEnv* env, jclass cls, jlong handle, jint index,
                                                                        jlongArray outShape) {
  (void)cls;
  return output_to_java(env, (Handle*)(intptr_t)handle, (size_t)index, outShape);
}

/* Runs input 0 = data (float32, `shape`); returns output 0 and writes its rank then dims into outShape. */
JNIEXPORT jfloatArray JNICALL Java_toolkit_deploy_Predictor_nativeRun(JNIEnv* env, jclass cls, jlong handle, jfloatArray data,
                                                                     jlongArray jshape, jlongArray outShape) {
  (void)cls;
  Handle* h = (Handle*)(intptr_t)handle;
  jsize rank = (*env)->GetArrayLength(env, jshape);
  int64_t dims[16];
  if (rank > 16) rank = 16;
  (*env)->GetLongArrayRegion(env, jshape, 0, rank, (jlong*)dims);
  jsize count = (*env)->GetArrayLength(env, data);
  float* buffer = malloc(sizeof(float) * (size_t)(count > 0 ? count : 1));
  if (!buffer) return NULL;
  (*env)->GetFloatArrayRegion(env, data, 0, count, buffer);
  ov_shape_t shape;
  ov_tensor_t* input = NULL;
  jfloatArray result = NULL;
  ov_status_e st = ov_shape_create(rank, dims, &shape);
  if (st != OK) {
    throw_model_error(env, "OpenVINO shape", st);
    free(buffer);
    return NULL;
  }
  st = ov_tensor_create_from_host_ptr(F32, shape, buffer, &input);
  if (st == OK) st = ov_infer_request_set_input_tensor_by_index(h->request, 0, input);
  if (st == OK) st = ov_infer_request_infer(h->request);
  if (st != OK) throw_model_error(env, "OpenVINO inference failed", st);
  else result = output_to_java(env, h, 0, outShape);
  if (input) ov_tensor_free(input);
  ov_shape_free(&shape);
  free(buffer);
  return result;
}

/*
 * Feeds int64 tensors by input name (names[i] <- values[i] with shape shapes[i]), runs the graph and
 * returns float32 output `output` (its rank and dims go to outShape). Java has checked the names and sizes.
 */
JNIEXPORT jfloatArray JNICALL Java_toolkit_deploy_Predictor_nativeRunInt64(JNIEnv* env, jclass cls, jlong handle,
                                                                          jobjectArray names, jobjectArray values,
                                                                          jobjectArray shapes, jint output,
                                                                          jlongArray outShape) {
  (void)cls;
  Handle* h = (Handle*)(intptr_t)handle;
  jsize n = (*env)->GetArrayLength(env, names);
  int64_t** buffers = calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t*));
  ov_tensor_t** tensors = calloc((size_t)(n > 0 ? n : 1), sizeof(ov_tensor_t*));
  jfloatArray result = NULL;
  ov_status_e st = OK;
  if (!buffers || !tensors) {
    jclass ex = (*env)->FindClass(env, "toolkit/deploy/ModelException");
    (*env)->ThrowNew(env, ex, "out of memory for the graph inputs");
    goto done;
  }
  for (jsize i = 0; i < n && st == OK; ++i) {
    jlongArray jdata = (jlongArray)(*env)->GetObjectArrayElement(env, values, i);
    jlongArray jshape = (jlongArray)(*env)->GetObjectArrayElement(env, shapes, i);
    jstring jname = (jstring)(*env)->GetObjectArrayElement(env, names, i);
    jsize count = (*env)->GetArrayLength(env, jdata);
    jsize rank = (*env)->GetArrayLength(env, jshape);
    int64_t dims[16];
    if (rank > 16) rank = 16;
    (*env)->GetLongArrayRegion(env, jshape, 0, rank, (jlong*)dims);
    buffers[i] = malloc(sizeof(int64_t) * (size_t)(count > 0 ? count : 1));
    if (!buffers[i]) {
      st = NOT_ALLOCATED;
      break;
    }
    (*env)->GetLongArrayRegion(env, jdata, 0, count, (jlong*)buffers[i]);
    ov_shape_t shape;
    st = ov_shape_create(rank, dims, &shape);
    if (st == OK) {
      st = ov_tensor_create_from_host_ptr(I64, shape, buffers[i], &tensors[i]);
      ov_shape_free(&shape);
    }
    if (st == OK) {
      const char* name = (*env)->GetStringUTFChars(env, jname, NULL);
      st = ov_infer_request_set_tensor(h->request, name, tensors[i]);
      (*env)->ReleaseStringUTFChars(env, jname, name);
    }
    (*env)->DeleteLocalRef(env, jdata);
    (*env)->DeleteLocalRef(env, jshape);
    (*env)->DeleteLocalRef(env, jname);
  }
  if (st == OK) st = ov_infer_request_infer(h->request);
  if (st != OK) throw_model_error(env, "OpenVINO inference failed", st);
  else result = output_to_java(env, h, (size_t)output, outShape);
done:
  for (jsize i = 0; buffers && tensors && i < n; ++i) {
    if (tensors[i]) ov_tensor_free(tensors[i]);
    if (buffers[i]) free(buffers[i]);
  }
  free(tensors);
  free(buffers);
  return result;
}
